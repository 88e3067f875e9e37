import { proxyActivities } from '@temporalio/workflow';
import type { SchemaRefreshOutcome } from '../activities/discover-tables.js';
import type { Activities } from '../activities/index.js';
import { shortActivity } from './options.js';
import { armPendingDeletion } from './pending-deletion.js';

/** A remote's list of tables is read under its own timeouts (seconds); the catalog write is small. */
const { discoverTables } = proxyActivities<Activities>(shortActivity);

/** Connections discovered at once: each holds one connection to its remote. */
export const schemaRefreshParallelism = 4;

/**
 * Seed 004's schema refresh: each connection's tables re-discovered and its catalog brought up to
 * date, a few connections at a time. One connection's unreadable remote is its outcome; the others
 * carry on. The cached tables of tables gone from a remote wait out the grace period on durable
 * timers that outlive this workflow.
 */
export async function schemaRefreshWorkflow(input: {
  tenantId: string;
  connectionIds: string[];
}): Promise<SchemaRefreshOutcome[]> {
  const outcomes: SchemaRefreshOutcome[] = [];
  for (let i = 0; i < input.connectionIds.length; i += schemaRefreshParallelism) {
    const batch = input.connectionIds.slice(i, i + schemaRefreshParallelism);
    outcomes.push(
      ...(await Promise.all(
        batch.map((connectionId) => discoverTables({ tenantId: input.tenantId, connectionId })),
      )),
    );
  }
  for (const o of outcomes) {
    for (const r of (o.ok && o.retired) || []) {
      await armPendingDeletion({
        id: r.deletionId,
        dueAt: r.dueAt,
        trigger: 'schema_refresh',
        summary: `drop ${r.table} at ${r.dueAt} (its remote table is gone)`,
      });
    }
  }
  return outcomes;
}
