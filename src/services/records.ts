import type { OperationStatus, OperationStep } from '../db/schema/index.js';
import { errors } from '../domain/errors.js';
import type { ServiceDeps } from './deps.js';
import type { Impact } from './impact.js';

/** Read-only views of what operations did: an operation, pending deletions, the audit log. */

export interface OperationView {
  id: string;
  /** The ingestion it belongs to, or null for a connection's (seed 004's data refresh). */
  ingestionId: string | null;
  connectionId: string | null;
  type: string;
  status: OperationStatus;
  requestedBy: string;
  autoRun: boolean;
  runId: string | null;
  steps: OperationStep[];
  impact: Impact | Record<string, never>;
  warnings: string[];
  notes: string[];
  error: string | null;
  createdAt: Date;
  finishedAt: Date | null;
  /** The seed's body for the kind of operation once it ended (seed 004's data refresh), else null. */
  result: Record<string, unknown> | null;
}

export async function getOperation(
  deps: Pick<ServiceDeps, 'sql'>,
  tenantId: string,
  operationId: string,
): Promise<OperationView> {
  const [op] = await deps.sql<OperationView[]>`
    select id, ingestion_id as "ingestionId", connection_id as "connectionId", type, status, requested_by as "requestedBy", auto_run as "autoRun",
           run_id as "runId", steps, impact, warnings, notes, error, created_at as "createdAt", finished_at as "finishedAt", result
    from autoloader.operations where id = ${operationId} and tenant_id = ${tenantId}`;
  if (!op) throw errors.operationNotFound();
  return op;
}

export interface PendingDeletionView {
  id: string;
  ingestion_id: string | null;
  operation_id: string | null;
  table_name: string;
  due_at: string;
  executed_at: string | null;
  created_at: string;
  /** Attempts the database refused; after a bounded number the deletion is given up (failed_at). */
  attempts: number;
  last_error: string | null;
  failed_at: string | null;
}

const isoText = (col: string) => `to_char(${col} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

export async function listPendingDeletions(
  deps: Pick<ServiceDeps, 'sql'>,
  tenantId: string,
  includeDone: boolean,
): Promise<PendingDeletionView[]> {
  const { sql } = deps;
  return sql<PendingDeletionView[]>`
    select id, ingestion_id, operation_id, schema_name || '.' || table_name as table_name,
           ${sql.unsafe(isoText('due_at'))} as due_at, ${sql.unsafe(isoText('executed_at'))} as executed_at,
           ${sql.unsafe(isoText('created_at'))} as created_at,
           attempts, last_error, ${sql.unsafe(isoText('failed_at'))} as failed_at
    from autoloader.pending_deletions
    where tenant_id = ${tenantId} ${includeDone ? sql`` : sql`and executed_at is null`}
    order by due_at`;
}

export interface AuditEventView {
  id: number;
  subject: string;
  action: string;
  ingestion_id: string | null;
  operation_id: string | null;
  dry_run: boolean;
  impact: Record<string, unknown> | null;
  result: string;
  created_at: string;
}

export async function listAuditEvents(
  deps: Pick<ServiceDeps, 'sql'>,
  tenantId: string,
  filter: { ingestionId?: string; limit: number },
): Promise<AuditEventView[]> {
  const { sql } = deps;
  return sql<AuditEventView[]>`
    select id::float8 as id, subject, action, ingestion_id, operation_id, dry_run, impact, result,
           ${sql.unsafe(isoText('created_at'))} as created_at
    from autoloader.audit_events
    where tenant_id = ${tenantId} ${filter.ingestionId ? sql`and ingestion_id = ${filter.ingestionId}` : sql``}
    order by id desc limit ${filter.limit}`;
}

/**
 * Cancels a running operation (a refresh, a drop): its workflow is cancelled — the run it started is
 * cancelled with it, a swap's shadow table is discarded and the live table kept — and it ends
 * `cancelled`. Waits a little for that; an operation already finished is returned unchanged.
 */
export async function cancelOperation(
  deps: Pick<ServiceDeps, 'sql' | 'temporal' | 'refresh'>,
  tenantId: string,
  operationId: string,
): Promise<OperationView> {
  const op = await getOperation(deps, tenantId, operationId);
  if (!['accepted', 'running', 'partial_failure', 'awaiting_approval'].includes(op.status)) return op;
  const [row] = await deps.sql<{ workflowId: string }[]>`
    select workflow_id as "workflowId" from autoloader.operations where id = ${operationId}`;
  const handle = deps.temporal.workflow.getHandle(row!.workflowId);
  const desc = await handle.describe();
  if (
    desc.status.name === 'RUNNING' &&
    (desc.memo as { operationId?: string } | undefined)?.operationId === op.id
  ) {
    await handle.cancel();
    await Promise.race([
      handle.result().catch(() => undefined),
      new Promise((resolve) => setTimeout(resolve, deps.refresh.responseWaitMs).unref()),
    ]);
  }
  return getOperation(deps, tenantId, operationId);
}
