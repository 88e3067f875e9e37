import { errors } from '../domain/errors.js';
import type { ServiceDeps } from './deps.js';

/** Read-only views of what operations did: an operation, pending deletions, the audit log. */

export async function getOperation(deps: Pick<ServiceDeps, 'sql'>, tenantId: string, operationId: string) {
  const [op] = await deps.sql<Record<string, unknown>[]>`
    select id, ingestion_id, type, status, requested_by, auto_run, run_id, steps, impact, warnings, notes, error,
           created_at, finished_at
    from autoloader.operations where id = ${operationId} and tenant_id = ${tenantId}`;
  if (!op) throw errors.operationNotFound();
  return op;
}

export async function listPendingDeletions(
  deps: Pick<ServiceDeps, 'sql'>,
  tenantId: string,
  includeDone: boolean,
): Promise<Record<string, unknown>[]> {
  const { sql } = deps;
  return sql<Record<string, unknown>[]>`
    select id, ingestion_id, operation_id, schema_name || '.' || table_name as table_name, due_at, executed_at, created_at
    from autoloader.pending_deletions
    where tenant_id = ${tenantId} ${includeDone ? sql`` : sql`and executed_at is null`}
    order by due_at`;
}

export async function listAuditEvents(
  deps: Pick<ServiceDeps, 'sql'>,
  tenantId: string,
  filter: { ingestionId?: string; limit: number },
): Promise<Record<string, unknown>[]> {
  const { sql } = deps;
  return sql<Record<string, unknown>[]>`
    select id::float8 as id, subject, action, ingestion_id, operation_id, dry_run, impact, result, created_at
    from autoloader.audit_events
    where tenant_id = ${tenantId} ${filter.ingestionId ? sql`and ingestion_id = ${filter.ingestionId}` : sql``}
    order by id desc limit ${filter.limit}`;
}
