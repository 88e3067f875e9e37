import type { Principal } from '../auth/tokens.js';
import type { FileStatus } from '../db/schema/index.js';
import { AppError } from '../domain/errors.js';
import {
  type LedgerRow,
  listFiles,
  listRejectedRows as listRejectedLedgerRows,
  type RejectedRow,
} from '../ledger/processed-files.js';
import { newId } from '../lib/ids.js';
import { clearProcessedFilesWorkflow } from '../workflows/index.js';
import type { ServiceDeps } from './deps.js';
import { startExclusive } from './operations.js';

/**
 * Forgets which files were loaded (seed 001's "existing" endpoint), so the next run takes every file
 * again. It is a mutating operation: it runs under the ingestion's workflow id like a run.
 */
export async function clearProcessedFiles(deps: ServiceDeps, principal: Principal, ingestionId: string) {
  const operationId = newId('op');
  const handle = await startExclusive(deps, ingestionId, clearProcessedFilesWorkflow, {
    args: [{ ingestionId }],
    memo: { operation: 'clear_processed_files', operationId },
    describe: (table) => `clear the file history of ${table} (${operationId})`,
  });
  const result = await handle.result();
  // Destructive like the refreshes: who forgot which history, and how much of it.
  await deps.sql`
    insert into autoloader.audit_events (tenant_id, subject, action, ingestion_id, operation_id, dry_run, impact, result)
    values (${principal.tenantId}, ${principal.subject}, 'clear_processed_files', ${ingestionId}, ${operationId}, false,
            ${deps.sql.json({ files_cleared: result.filesCleared })}, 'success')`;
  return result;
}

/** One page of the live file history, by id. */
export async function listProcessedFiles(
  deps: Pick<ServiceDeps, 'sql'>,
  ingestionId: string,
  page: { limit: number; cursor?: string; status?: FileStatus },
): Promise<{ items: LedgerRow[]; nextCursor: string | null }> {
  const after = page.cursor ? Number.parseInt(page.cursor, 10) : 0;
  if (!Number.isSafeInteger(after))
    throw new AppError('VALIDATION_ERROR', 'Invalid query: cursor', { field: 'cursor' });
  const rows = await listFiles(deps.sql, ingestionId, {
    afterId: after,
    limit: page.limit + 1,
    status: page.status,
  });
  const items = rows.slice(0, page.limit);
  return { items, nextCursor: rows.length > page.limit ? String(items.at(-1)!.id) : null };
}

/** One page of the rows an ingestion's files rejected (on_error: skip_rows), by id. */
export async function listRejectedRows(
  deps: Pick<ServiceDeps, 'sql'>,
  ingestionId: string,
  page: { limit: number; cursor?: string; fileId?: number },
): Promise<{ items: RejectedRow[]; nextCursor: string | null }> {
  const after = page.cursor ? Number(page.cursor) : 0;
  if (!Number.isSafeInteger(after) || after < 0)
    throw new AppError('VALIDATION_ERROR', 'Invalid query: cursor', { field: 'cursor' });
  const rows = await listRejectedLedgerRows(deps.sql, ingestionId, {
    afterId: after,
    limit: page.limit + 1,
    fileId: page.fileId,
  });
  const items = rows.slice(0, page.limit);
  return { items, nextCursor: rows.length > page.limit ? String(items.at(-1)!.id) : null };
}
