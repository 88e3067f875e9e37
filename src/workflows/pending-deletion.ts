import { proxyActivities, sleep } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
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
