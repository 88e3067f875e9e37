import { TemporalFailure } from '@temporalio/common';
import { getExternalWorkflowHandle, proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import type { RollbackInput, RollbackOutcome } from '../activities/rollback-swap.js';
import { workflowIds } from '../temporal/ids.js';
import { swapActivity } from './options.js';
import { armPendingDeletion } from './pending-deletion.js';

/**
 * POST /operations/{id}/rollback: undoes a swap full refresh within its grace period. Runs under the
 * ingestion's workflow id, so no run or refresh changes the table meanwhile. One activity swaps the
 * previous version back in (a refusal — grace period over, not a swap — is its answer, not a
 * failure); then the restored version's deletion timer is cancelled and the rolled-back version's
 * started, the same durable timer a swap starts.
 */
export async function rollbackWorkflow(input: RollbackInput): Promise<RollbackOutcome> {
  const { rollbackSwap } = proxyActivities<Activities>({
    ...swapActivity,
    summary: `swap back in the version operation ${input.operationId} replaced`,
  });
  const outcome = await rollbackSwap(input);
  if (!outcome.done) return outcome;
  const { result } = outcome;

  try {
    await getExternalWorkflowHandle(workflowIds.deletion(result.cancelled_deletion_id)).cancel();
  } catch (err) {
    // A timer that already ended takes the request as a no-op; the server refuses it only when it
    // knows no workflow under that id (its history lost, the start-up sweep not yet run): then
    // there is nothing to stop, and the rollback, committed, must not fail for it.
    if (!(err instanceof TemporalFailure)) throw err;
  }

  const replaced = result.rolled_back_version;
  if (replaced) {
    await armPendingDeletion({
      id: replaced.deletion_id,
      dueAt: replaced.due_at,
      trigger: 'rollback',
      summary: `drop ${replaced.table_name} at ${replaced.due_at} (the version operation ${input.operationId} swapped in, rolled back)`,
    });
  }
  return outcome;
}
