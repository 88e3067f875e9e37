import type postgres from 'postgres';
import { workflowIds } from '../temporal/ids.js';
import type { ActivityDeps } from './deps.js';

/**
 * The members of a refresh of several ingestions — a batch refresh, or the data refresh of an
 * object-store connection (`POST /refresh` with `data: true`): each is seed 001's refresh of one
 * ingestion, recorded as that ingestion's own operation like any refresh, and audited under the
 * parent operation's id as `batch_id`, so the whole counts once against the rate limit.
 */
export interface MemberRefresh {
  /** The batch's operation, or the connection's (`connection_data_refresh`, `table_data_refresh`). */
  parentOperationId: string;
  operationId: string;
  runId: string;
  ingestionId: string;
  tenantId: string;
  requestedBy: string;
  type: 'full_refresh' | 'fresh_start';
  strategy: 'drop' | 'swap';
  autoRun: boolean;
  impact: Record<string, unknown>;
  warnings: string[];
  notes: string[];
}

/** Records the member's operation and audit event before its refresh workflow starts. Idempotent. */
export function makeBeginMemberRefresh({ sql }: ActivityDeps) {
  return async function beginMemberRefresh(m: MemberRefresh): Promise<void> {
    await sql.begin(async (tx) => {
      const inserted = await tx`
        insert into autoloader.operations (id, ingestion_id, tenant_id, type, strategy, status, requested_by, auto_run, workflow_id, impact, warnings, notes)
        select ${m.operationId}, id, tenant_id, ${m.type}, ${m.strategy}, 'running', ${m.requestedBy}, ${m.autoRun},
               ${workflowIds.ingestion(m.ingestionId)}, ${tx.json(m.impact as postgres.JSONValue)}, ${tx.json(m.warnings)}, ${tx.json(m.notes)}
        from autoloader.ingestions where id = ${m.ingestionId} and tenant_id = ${m.tenantId}
        on conflict (id) do nothing`;
      if (inserted.count === 0) return;
      await tx`
        insert into autoloader.audit_events (tenant_id, subject, action, ingestion_id, operation_id, dry_run, impact, result)
        values (${m.tenantId}, ${m.requestedBy}, 'full_refresh', ${m.ingestionId}, ${m.operationId}, false,
                ${tx.json({ ...m.impact, batch_id: m.parentOperationId } as postgres.JSONValue)}, 'accepted')`;
    });
  };
}

/**
 * A member that never started (its ingestion was busy, or deleted meanwhile): its operation and
 * audit event go, so nothing says it ran. Idempotent.
 */
export function makeAbandonMemberRefresh({ sql }: ActivityDeps) {
  return async function abandonMemberRefresh(input: { operationId: string }): Promise<void> {
    await sql.begin(async (tx) => {
      await tx`delete from autoloader.audit_events where operation_id = ${input.operationId}`;
      await tx`delete from autoloader.operations where id = ${input.operationId}`;
    });
  };
}

/** How a member ended, from its operation row and the rows its run loaded into the new version. */
export function makeMemberRefreshOutcome({ sql }: ActivityDeps) {
  return async function memberRefreshOutcome(input: {
    operationId: string;
    runId: string;
  }): Promise<{ status: string; error: string | null; rows: number }> {
    const [row] = await sql<{ status: string; error: string | null; rows: number | null }[]>`
      select o.status, o.error, r.records_written::float8 as rows
      from autoloader.operations o left join autoloader.runs r on r.id = ${input.runId}
      where o.id = ${input.operationId}`;
    return { status: row?.status ?? 'failed', error: row?.error ?? null, rows: row?.rows ?? 0 };
  };
}
