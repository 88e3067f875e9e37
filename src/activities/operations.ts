import type postgres from 'postgres';
import type { OperationStep } from '../db/schema/index.js';
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
    status: 'succeeded' | 'failed';
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
