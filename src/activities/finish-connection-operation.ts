import type postgres from 'postgres';
import type { ActivityDeps } from './deps.js';

/**
 * The end of a connection's data refresh, on its operation row: the status, the seed's body as
 * `result`, and the audit event's result. Idempotent: a retried (or replayed) call finds the row
 * already final and writes nothing.
 */
export function makeFinishConnectionOperation({ sql }: ActivityDeps) {
  return async function finishConnectionOperation(input: {
    operationId: string;
    status: 'success' | 'partial_failure' | 'failed' | 'cancelled';
    result?: Record<string, unknown>;
    error?: string;
  }): Promise<void> {
    await sql.begin(async (tx) => {
      const done = await tx`
        update autoloader.operations set status = ${input.status}, error = ${input.error ?? null},
          result = ${input.result ? tx.json(input.result as postgres.JSONValue) : null}, finished_at = now()
        where id = ${input.operationId} and status in ('accepted', 'running')`;
      if (done.count > 0)
        await tx`update autoloader.audit_events set result = ${input.status} where operation_id = ${input.operationId}`;
    });
  };
}
