import type postgres from 'postgres';
import type { OperationStep } from '../db/schema/index.js';
import { workflowIds } from '../temporal/ids.js';
import type { ActivityDeps } from './deps.js';

/**
 * Records a completed step on the operation row. Steps are keyed by name, so a retried activity
 * (or a replayed workflow) rewrites the same step instead of appending a duplicate.
 */
export function makeRecordStep({ sql }: ActivityDeps) {
  return async function recordStep(input: {
    operationId: string;
    step: OperationStep;
    runId?: string;
  }): Promise<void> {
    await sql`
      update autoloader.operations set
        steps = coalesce(
          (select jsonb_agg(s) from jsonb_array_elements(steps) s where s->>'operation' <> ${input.step.operation}),
          '[]'::jsonb
        ) || jsonb_build_array(${sql.json(input.step as unknown as postgres.JSONValue)}::jsonb),
        run_id = coalesce(${input.runId ?? null}, run_id)
      where id = ${input.operationId}`;
  };
}

/** Final state of the operation, mirrored onto its audit event. */
export function makeFinishOperation({ sql }: ActivityDeps) {
  return async function finishOperation(input: {
    operationId: string;
    status: 'success' | 'failed' | 'cancelled';
    error?: string;
  }): Promise<void> {
    await sql.begin(async (tx) => {
      await tx`
        update autoloader.operations set status = ${input.status}, error = ${input.error ?? null}, finished_at = now()
        where id = ${input.operationId} and status in ('running', 'partial_failure')`;
      await tx`update autoloader.audit_events set result = ${input.status} where operation_id = ${input.operationId}`;
    });
  };
}

/** The operation row (and audit event) of a full refresh started by a schedule rather than a person. */
export function makeCreateScheduledOperation({ sql }: ActivityDeps) {
  return async function createScheduledOperation(input: {
    operationId: string;
    ingestionId: string;
    strategy: 'drop' | 'swap';
  }): Promise<void> {
    await sql.begin(async (tx) => {
      const [ing] = await tx<{ tenantId: string }[]>`
        select tenant_id as "tenantId" from autoloader.ingestions where id = ${input.ingestionId}`;
      if (!ing) return;
      await tx`
        insert into autoloader.operations (id, ingestion_id, tenant_id, type, strategy, status, requested_by, auto_run, workflow_id, impact)
        values (${input.operationId}, ${input.ingestionId}, ${ing.tenantId}, 'full_refresh', ${input.strategy}, 'running',
                'schedule', true, ${workflowIds.ingestion(input.ingestionId)}, '{}'::jsonb)
        on conflict (id) do nothing`;
      await tx`
        insert into autoloader.audit_events (tenant_id, subject, action, ingestion_id, operation_id, dry_run, result)
        select ${ing.tenantId}, 'schedule', 'full_refresh', ${input.ingestionId}, ${input.operationId}, false, 'accepted'
        where not exists (select 1 from autoloader.audit_events where operation_id = ${input.operationId})`;
    });
  };
}
