import type postgres from 'postgres';
import type { OperationStep } from '../db/schema/index.js';
import { computeImpact } from '../services/impact.js';
import { workflowIds } from '../temporal/ids.js';
import type { ActivityDeps } from './deps.js';
import type { SourceImpact } from './estimate-impact.js';

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
        where id = ${input.operationId} and status in ('running', 'partial_failure', 'awaiting_approval')`;
      await tx`update autoloader.audit_events set result = ${input.status} where operation_id = ${input.operationId}`;
    });
  };
}

export type Admission = { admitted: true; graceSeconds: number } | { admitted: false; reason: string };

/**
 * Whether a schedule's tick may start its operation, by the rules a person's request follows: a
 * paused ingestion is not run by its schedules; a scheduled full refresh counts against the
 * full-refresh rate limit (the schedule is its "user") and, estimated above the large-operation
 * threshold, is not started — nobody reviews a scheduled refresh's dry run, so it is left for a
 * person to run after one. An admitted full refresh gets its operation row and audit event, and the
 * configured grace period; a refused one an audit event saying why.
 */
export function makeAdmitScheduledOperation({ sql, refresh }: ActivityDeps) {
  return async function admitScheduledOperation(input: {
    operationId: string;
    ingestionId: string;
    operation: 'run' | 'full_refresh';
    strategy: 'drop' | 'swap';
    /** The full refresh's source, as estimateImpact lists it. */
    source?: SourceImpact;
  }): Promise<Admission> {
    const [ing] = await sql<{ tenantId: string; status: string }[]>`
      select tenant_id as "tenantId", status from autoloader.ingestions where id = ${input.ingestionId}`;
    if (!ing) return { admitted: false, reason: 'the ingestion no longer exists' };
    if (ing.status === 'paused') return { admitted: false, reason: 'the ingestion is paused' };
    if (input.operation === 'run') return { admitted: true, graceSeconds: refresh.swapGraceSeconds };

    const impact = input.source ? computeImpact('full_refresh', true, input.source, refresh) : undefined;
    const refusal = await sql.begin(async (tx) => {
      // One tick at a time per tenant: the count and the insert below see each other.
      await tx`select pg_advisory_xact_lock(hashtext(${`autoloader.scheduled-refresh:${ing.tenantId}`}))`;
      const [recent] = await tx<{ n: number }[]>`
        select count(*)::int as n from autoloader.audit_events
        where tenant_id = ${ing.tenantId} and subject = 'schedule' and action = 'full_refresh'
          and not dry_run and result <> 'skipped' and created_at > now() - interval '1 hour'
          and operation_id <> ${input.operationId}`;
      let reason: string | undefined;
      if (impact && impact.estimated_cost_usd > refresh.largeOperationUsd)
        reason = `estimated at $${impact.estimated_cost_usd.toFixed(2)}, above the large-operation threshold ($${refresh.largeOperationUsd}): run it by hand after a dry run`;
      else if ((recent?.n ?? 0) >= refresh.rateLimitPerHour)
        reason = `at most ${refresh.rateLimitPerHour} full refreshes per hour: the schedule's limit is reached`;
      const impactJson = tx.json((impact ?? {}) as never);
      if (reason) {
        await tx`
          insert into autoloader.audit_events (tenant_id, subject, action, ingestion_id, operation_id, dry_run, impact, result)
          values (${ing.tenantId}, 'schedule', 'full_refresh', ${input.ingestionId}, null, false, ${impactJson}, 'skipped')`;
        return reason;
      }
      await tx`
        insert into autoloader.operations (id, ingestion_id, tenant_id, type, strategy, status, requested_by, auto_run, workflow_id, impact)
        values (${input.operationId}, ${input.ingestionId}, ${ing.tenantId}, 'full_refresh', ${input.strategy}, 'running',
                'schedule', true, ${workflowIds.ingestion(input.ingestionId)}, ${impactJson})
        on conflict (id) do nothing`;
      await tx`
        insert into autoloader.audit_events (tenant_id, subject, action, ingestion_id, operation_id, dry_run, impact, result)
        select ${ing.tenantId}, 'schedule', 'full_refresh', ${input.ingestionId}, ${input.operationId}, false, ${impactJson}, 'accepted'
        where not exists (select 1 from autoloader.audit_events where operation_id = ${input.operationId})`;
      return undefined;
    });
    return refusal
      ? { admitted: false, reason: refusal }
      : { admitted: true, graceSeconds: refresh.swapGraceSeconds };
  };
}
