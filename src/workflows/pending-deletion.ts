import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import { proxyActivities, sleep, startChild, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import { workflowIds } from '../temporal/ids.js';
import { childSearchAttributes } from '../temporal/search-attributes.js';
import { shortActivity } from './options.js';
import { notifyWebhooks } from './webhook-delivery.js';

const { executeDeletion } = proxyActivities<Activities>(shortActivity);

/**
 * Waits out the grace period on a durable timer, then drops the old table version. The timer lives
 * in Temporal's history, so worker or server restarts during the grace period do not lose it; a
 * deletion already due when the worker comes back runs at once. A rollback that brings the version
 * back cancels this workflow (it ends cancelled, dropping nothing).
 */
export async function pendingDeletionWorkflow(input: { deletionId: string; dueAt: string }): Promise<void> {
  const wait = new Date(input.dueAt).getTime() - Date.now();
  if (wait > 0) await sleep(wait);
  const { executed } = await executeDeletion({ deletionId: input.deletionId });
  if (executed) await notifyWebhooks({ kind: 'deletion', deletionId: input.deletionId });
}

/**
 * Starts a deletion's timer (pendingDeletionWorkflow) from the workflow that queued the deletion, as
 * a child that outlives it: the table or connection is free again as soon as the caller is done.
 * Every worker's start-up sweep re-arms each pending deletion under the same workflow id, so after a
 * crash between the commit that queued the deletion and this start the timer may be armed already:
 * that is the outcome wanted, not a failure of the caller.
 */
export async function armPendingDeletion(deletion: {
  id: string;
  /** ISO 8601. */
  dueAt: string;
  /** What queued it, for the search attribute `trigger`. */
  trigger: string;
  /** The Temporal UI's summary: which table goes, and why. */
  summary: string;
}): Promise<void> {
  try {
    await startChild(pendingDeletionWorkflow, {
      workflowId: workflowIds.deletion(deletion.id),
      args: [{ deletionId: deletion.id, dueAt: deletion.dueAt }],
      typedSearchAttributes: childSearchAttributes(workflowInfo().typedSearchAttributes, {
        operation: 'pending_deletion',
        trigger: deletion.trigger,
      }),
      staticSummary: deletion.summary,
      parentClosePolicy: 'ABANDON',
    });
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
  }
}
