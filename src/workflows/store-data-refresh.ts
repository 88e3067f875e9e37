import { ApplicationFailure } from '@temporalio/workflow';
import {
  asOperation,
  type ConnectionDataRefreshResult,
  connectionDataRefreshParallelism,
  connectionResult,
  type TableDataRefreshResult,
} from './data-refresh.js';
import { inLanes, type MemberContext, type MemberSpec, refreshMember } from './members.js';
import type { RefreshInput } from './refresh.js';

/** One table of an object-store connection: the destination table of one of its ingestions. */
export interface StoreTable extends MemberSpec {
  schemaName: string;
  tableName: string;
}

export interface StoreDataRefreshInput {
  tenantId: string;
  connectionId: string;
  /** The connection's operation, finished by this workflow. */
  operationId: string;
  requestedBy: string;
  /** One table named (`schema_name`, `table_name`): answer seed 004's table body for it. */
  oneTable: boolean;
  tables: StoreTable[];
  run: RefreshInput['run'];
  graceSeconds: number;
  parallelism?: number;
}

/**
 * Seed 004's data refresh for an object-store connection: its "tables" are its ingestions'
 * destination tables, and refreshing one is seed 001's swap full refresh of that ingestion — every
 * file loaded into a shadow table, swapped in one transaction, the old version deleted after the
 * grace period. Each member is a child under the ingestion's own workflow id (a busy one is that
 * table's error, the others go on), and a worker crash resumes here without refreshing finished
 * members again.
 */
export async function storeDataRefreshWorkflow(
  input: StoreDataRefreshInput,
): Promise<ConnectionDataRefreshResult | TableDataRefreshResult> {
  const ctx: MemberContext = {
    parentOperationId: input.operationId,
    tenantId: input.tenantId,
    requestedBy: input.requestedBy,
    type: 'full_refresh',
    strategy: 'swap',
    autoRun: true,
    graceSeconds: input.graceSeconds,
    run: input.run,
    trigger: 'connection_data_refresh',
  };
  if (input.oneTable)
    return asOperation(
      input.operationId,
      () => refreshOneTable(ctx, input),
      () => 'success',
    );
  return asOperation(
    input.operationId,
    () => refreshEveryTable(ctx, input),
    (r) => (r.tables_failed === 0 ? 'success' : r.tables_refreshed > 0 ? 'partial_failure' : 'failed'),
  );
}

async function refreshOneTable(
  ctx: MemberContext,
  input: StoreDataRefreshInput,
): Promise<TableDataRefreshResult> {
  const started = Date.now();
  const table = input.tables[0]!;
  const outcome = await refreshMember(ctx, table);
  if (!outcome.ok)
    throw ApplicationFailure.nonRetryable(
      outcome.error,
      outcome.busy ? 'IngestionBusy' : 'MemberRefreshFailed',
    );
  return {
    connection_id: input.connectionId,
    schema_name: table.schemaName,
    table_name: table.tableName,
    rows_synced: outcome.rows,
    duration_ms: Date.now() - started,
  };
}

async function refreshEveryTable(
  ctx: MemberContext,
  input: StoreDataRefreshInput,
): Promise<ConnectionDataRefreshResult> {
  const started = Date.now();
  const outcomes = await inLanes(input.tables, input.parallelism ?? connectionDataRefreshParallelism, (t) =>
    refreshMember(ctx, t),
  );
  return connectionResult(input.connectionId, input.tables, outcomes, started);
}
