import type { Client } from '@temporalio/client';
import type { Sql } from '../db/client.js';
import { workflowIds } from '../temporal/ids.js';
import { searchAttributePairs } from '../temporal/search-attributes.js';
import { pendingDeletionWorkflow } from '../workflows/pending-deletion.js';

/**
 * Start-up sweep: every pending deletion not yet carried out gets its timer workflow (again). With
 * Temporal's history intact this finds the existing workflow and changes nothing; if that history was
 * lost (a wiped dev server), deletions already due are carried out now instead of never.
 */
export async function resumePendingDeletions(deps: {
  sql: Sql;
  temporal: Client;
  taskQueue: string;
}): Promise<number> {
  const rows = await deps.sql<
    { id: string; dueAt: Date; ingestionId: string | null; tenantId: string | null; table: string }[]
  >`
    select id, due_at as "dueAt", ingestion_id as "ingestionId", tenant_id as "tenantId",
           schema_name || '.' || table_name as "table"
    from autoloader.pending_deletions where executed_at is null order by due_at`;
  for (const row of rows) {
    await deps.temporal.workflow
      .start(pendingDeletionWorkflow, {
        workflowId: workflowIds.deletion(row.id),
        taskQueue: deps.taskQueue,
        args: [{ deletionId: row.id, dueAt: row.dueAt.toISOString() }],
        typedSearchAttributes: searchAttributePairs({
          ingestionId: row.ingestionId ?? undefined,
          tenantId: row.tenantId ?? undefined,
          operation: 'pending_deletion',
          trigger: 'startup',
        }),
        staticSummary: `drop ${row.table} at ${row.dueAt.toISOString()}`,
        workflowIdConflictPolicy: 'USE_EXISTING',
        // A deletion that already completed keeps its closed workflow; do not run it twice.
        workflowIdReusePolicy: 'REJECT_DUPLICATE',
      })
      .catch((err: unknown) => {
        if (err instanceof Error && err.name === 'WorkflowExecutionAlreadyStartedError') return;
        throw err;
      });
  }
  return rows.length;
}
