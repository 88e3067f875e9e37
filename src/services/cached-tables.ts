import type { Client } from '@temporalio/client';
import type { RetiredTable } from '../catalog/retire-cached-tables.js';
import { workflowIds } from '../temporal/ids.js';
import { searchAttributePairs } from '../temporal/search-attributes.js';
import { pendingDeletionWorkflow } from '../workflows/pending-deletion.js';

/** Arms the durable timer of each retired table (after the transaction that queued them committed). */
export async function armRetiredTables(
  deps: { temporal: Client; taskQueue: string },
  tenantId: string,
  retired: RetiredTable[],
): Promise<void> {
  for (const r of retired) {
    await deps.temporal.workflow.start(pendingDeletionWorkflow, {
      workflowId: workflowIds.deletion(r.deletionId),
      taskQueue: deps.taskQueue,
      args: [{ deletionId: r.deletionId, dueAt: r.dueAt }],
      typedSearchAttributes: searchAttributePairs({
        tenantId,
        operation: 'pending_deletion',
        trigger: 'connection_deleted',
      }),
      staticSummary: `drop ${r.table} at ${r.dueAt} (its connection was deleted)`,
    });
  }
}
