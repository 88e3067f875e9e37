import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import {
  ApplicationFailure,
  executeChild,
  isCancellation,
  proxyActivities,
  rootCause,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import type { MemberRefresh } from '../activities/member-refresh.js';
import { workflowIds } from '../temporal/ids.js';
import { searchAttributePairs } from '../temporal/search-attributes.js';
import {
  asOperation,
  type ConnectionDataRefreshResult,
  connectionDataRefreshParallelism,
  type TableDataRefreshResult,
} from './data-refresh.js';
import { shortActivity } from './options.js';
import { type RefreshInput, refreshWorkflow } from './refresh.js';

const { beginMemberRefresh, abandonMemberRefresh, memberRefreshOutcome } =
  proxyActivities<Activities>(shortActivity);

/** One table of an object-store connection: the destination table of one of its ingestions. */
export interface StoreTable {
  ingestionId: string;
  schemaName: string;
  tableName: string;
  /** Chosen by the API, so a retried or replayed start records the same member. */
  operationId: string;
  runId: string;
  impact: Record<string, unknown>;
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

type Outcome = { ok: true; rows: number } | { ok: false; error: string; busy?: true };

/**
 * Seed 004's data refresh for an object-store connection: its "tables" are its ingestions'
 * destination tables, and refreshing one is seed 001's swap full refresh of that ingestion — every
 * file loaded into a shadow table, swapped in one transaction, the old version deleted after the
 * grace period. Each member runs as a child under the ingestion's own workflow id, so it is exclusive
 * with the ingestion's runs and refreshes (a busy one is that table's error, the others go on), and
 * a worker crash resumes here without refreshing finished members again.
 */
export async function storeDataRefreshWorkflow(
  input: StoreDataRefreshInput,
): Promise<ConnectionDataRefreshResult | TableDataRefreshResult> {
  if (input.oneTable)
    return asOperation(
      input.operationId,
      () => refreshOneTable(input),
      () => 'success',
    );
  return asOperation(
    input.operationId,
    () => refreshEveryTable(input),
    (r) => (r.tables_failed === 0 ? 'success' : r.tables_refreshed > 0 ? 'partial_failure' : 'failed'),
  );
}

async function refreshOneTable(input: StoreDataRefreshInput): Promise<TableDataRefreshResult> {
  const started = Date.now();
  const table = input.tables[0]!;
  const outcome = await refreshMember(input, table);
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

async function refreshEveryTable(input: StoreDataRefreshInput): Promise<ConnectionDataRefreshResult> {
  const started = Date.now();
  const outcomes: Outcome[] = [];
  let next = 0;
  const lane = async () => {
    while (next < input.tables.length) {
      const i = next++;
      outcomes[i] = await refreshMember(input, input.tables[i]!);
    }
  };
  const width = Math.max(
    1,
    Math.min(input.parallelism ?? connectionDataRefreshParallelism, input.tables.length),
  );
  await Promise.all(Array.from({ length: width }, lane));

  const result: ConnectionDataRefreshResult = {
    connection_id: input.connectionId,
    tables_refreshed: 0,
    tables_failed: 0,
    total_rows: 0,
    duration_ms: 0,
    errors: [],
  };
  outcomes.forEach((o, i) => {
    if (o.ok) {
      result.tables_refreshed += 1;
      result.total_rows += o.rows;
    } else {
      const t = input.tables[i]!;
      result.tables_failed += 1;
      result.errors.push({ schema_name: t.schemaName, table_name: t.tableName, error: o.error });
    }
  });
  result.duration_ms = Date.now() - started;
  return result;
}

/** One ingestion's swap full refresh, as a child holding the ingestion's workflow id. */
async function refreshMember(input: StoreDataRefreshInput, t: StoreTable): Promise<Outcome> {
  const member: MemberRefresh = {
    parentOperationId: input.operationId,
    operationId: t.operationId,
    runId: t.runId,
    ingestionId: t.ingestionId,
    tenantId: input.tenantId,
    requestedBy: input.requestedBy,
    impact: t.impact,
  };
  await beginMemberRefresh(member);
  try {
    await executeChild(refreshWorkflow, {
      workflowId: workflowIds.ingestion(t.ingestionId),
      args: [
        {
          operationId: t.operationId,
          ingestionId: t.ingestionId,
          type: 'full_refresh',
          autoRun: true,
          runId: t.runId,
          run: input.run,
          strategy: 'swap',
          graceSeconds: input.graceSeconds,
        },
      ],
      // What a 409 on the ingestion names while this member holds it, as for any refresh.
      memo: { operation: 'full_refresh', operationId: t.operationId, runId: t.runId },
      typedSearchAttributes: workflowInfo().typedSearchAttributes.updateCopy(
        searchAttributePairs({
          ingestionId: t.ingestionId,
          operation: 'full_refresh',
          runId: t.runId,
          trigger: 'connection_data_refresh',
        }),
      ),
      staticSummary: `full refresh (swap) of ${t.schemaName}.${t.tableName}, for the data refresh of connection ${input.connectionId}`,
    });
  } catch (err) {
    if (isCancellation(err)) throw err;
    if (err instanceof WorkflowExecutionAlreadyStartedError) {
      await abandonMemberRefresh({ operationId: t.operationId });
      return { ok: false, busy: true, error: 'an operation is running on this ingestion (RUN_IN_PROGRESS)' };
    }
    const ended = await memberRefreshOutcome({ operationId: t.operationId, runId: t.runId });
    return { ok: false, error: ended.error ?? rootCause(err) ?? String(err) };
  }
  const ended = await memberRefreshOutcome({ operationId: t.operationId, runId: t.runId });
  return { ok: true, rows: ended.rows };
}
