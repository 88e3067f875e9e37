import { randomBytes } from 'node:crypto';
import { log } from '@temporalio/activity';
import { dropIfExists, swapIn, versionedName } from '../destination/table.js';
import { discardScope, promoteScope } from '../ledger/processed-files.js';
import { newId } from '../lib/ids.js';
import type { ActivityDeps } from './deps.js';
import { loadIngestionContext } from './ingestion-context.js';

export interface SwapResult {
  liveTable: string;
  /** The previous version, renamed aside; null when there was none. */
  oldTable: string | null;
  deletion: { id: string; dueAt: string } | null;
}

/**
 * Seed 004's atomic swap: in one transaction the live table is renamed aside, the shadow table takes
 * its name, the shadow's file history becomes the live history, and the old version is queued for
 * deletion. Readers block for the instant of the rename and then see the new version: never a
 * missing or half-built table. Idempotent: a retry after the commit finds the swap done.
 */
export function makeSwapTables({ sql }: ActivityDeps) {
  return async function swapTables(input: {
    operationId: string;
    ingestionId: string;
    shadowTable: string;
    scope: string;
    graceSeconds: number;
  }): Promise<SwapResult> {
    const { destination } = await loadIngestionContext(sql, input.ingestionId);
    const { schema, table } = destination;
    return sql.begin(async (tx) => {
      const [done] = await tx<{ id: string; tableName: string; dueAt: Date }[]>`
        select id, table_name as "tableName", due_at as "dueAt" from autoloader.pending_deletions
        where operation_id = ${input.operationId}`;
      if (done)
        return {
          liveTable: `${schema}.${table}`,
          oldTable: `${schema}.${done.tableName}`,
          deletion: { id: done.id, dueAt: done.dueAt.toISOString() },
        };

      const candidateOld = versionedName(table, 'old', randomBytes(4).toString('hex'));
      const hadLive = await swapIn(tx, destination, input.shadowTable, candidateOld);
      const oldTable = hadLive ? candidateOld : null;
      await promoteScope(tx, input.ingestionId, input.scope);

      let deletion: SwapResult['deletion'] = null;
      if (oldTable) {
        const id = newId('del');
        const [row] = await tx<{ dueAt: Date }[]>`
          insert into autoloader.pending_deletions (id, ingestion_id, operation_id, tenant_id, schema_name, table_name, due_at)
          select ${id}, i.id, ${input.operationId}, i.tenant_id, ${schema}, ${oldTable}, now() + make_interval(secs => ${input.graceSeconds})
          from autoloader.ingestions i where i.id = ${input.ingestionId}
          returning due_at as "dueAt"`;
        deletion = { id, dueAt: row!.dueAt.toISOString() };
      }
      return { liveTable: `${schema}.${table}`, oldTable: oldTable && `${schema}.${oldTable}`, deletion };
    });
  };
}

/** Drops a shadow table and its file history after a failed shadow run: the live version stays as it was. */
export function makeDiscardShadow({ sql }: ActivityDeps) {
  return async function discardShadow(input: {
    ingestionId: string;
    shadowTable: string;
    scope: string;
  }): Promise<void> {
    const { destination } = await loadIngestionContext(sql, input.ingestionId);
    await sql.begin(async (tx) => {
      await dropIfExists(tx, { schema: destination.schema, table: input.shadowTable });
      await discardScope(tx, input.ingestionId, input.scope);
    });
  };
}

/** Carries out one pending deletion; idempotent. */
export function makeExecuteDeletion({ sql }: ActivityDeps) {
  return async function executeDeletion(input: { deletionId: string }): Promise<{ executed: boolean }> {
    return sql.begin(async (tx) => {
      const [d] = await tx<{ schemaName: string; tableName: string; executedAt: Date | null }[]>`
        select schema_name as "schemaName", table_name as "tableName", executed_at as "executedAt"
        from autoloader.pending_deletions where id = ${input.deletionId} for update`;
      if (!d || d.executedAt) return { executed: false };
      await dropIfExists(tx, { schema: d.schemaName, table: d.tableName });
      await tx`update autoloader.pending_deletions set executed_at = now() where id = ${input.deletionId}`;
      log.info('old table version deleted', { table: `${d.schemaName}.${d.tableName}` });
      return { executed: true };
    });
  };
}
