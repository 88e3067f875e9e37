import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import {
  ActivityCancellationType,
  type ActivityOptions,
  CancellationScope,
  executeChild,
  isCancellation,
  proxyActivities,
  rootCause,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import { workflowIds } from '../temporal/ids.js';
import { childSearchAttributes } from '../temporal/search-attributes.js';
import { inLanes } from './members.js';
import { shortActivity, swapActivity } from './options.js';
import { armPendingDeletion } from './pending-deletion.js';

/**
 * The copy: long, heartbeating on a timer, so a lost worker is noticed within seconds and the
 * copy starts over (its transaction rolled back). Unlike loads, its attempts are bounded: a remote
 * that keeps dropping the connection fails the table, and the request waiting for it gets an answer.
 */
const copyActivity: ActivityOptions = {
  startToCloseTimeout: '6 hours',
  heartbeatTimeout: '30 seconds',
  // A cancelled refresh ends once the copy has rolled back: nothing of it is left when it says so.
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts: 5 },
};

const { copyTable } = proxyActivities<Activities>(copyActivity);
const { swapCachedTable } = proxyActivities<Activities>(swapActivity);
const { listCachedTables, finishConnectionOperation } = proxyActivities<Activities>(shortActivity);

type OperationEnd = Parameters<Activities['finishConnectionOperation']>[0];

/**
 * Runs a data refresh (or a batch refresh) and, when it was started as an operation (`POST
 * /refresh`, `POST /batch-refresh`; a connection refresh's children are not), records how it ended:
 * the seed's body as the operation's `result`.
 * The record is written even when the refresh is cancelled, outside the cancelled scope.
 */
export async function asOperation<R extends object>(
  operationId: string | undefined,
  refresh: () => Promise<R>,
  statusOf: (r: R) => OperationEnd['status'],
): Promise<R> {
  if (operationId === undefined) return refresh();
  let result: R;
  try {
    result = await refresh();
  } catch (err) {
    const end: OperationEnd = isCancellation(err)
      ? { operationId, status: 'cancelled', error: 'cancelled' }
      : { operationId, status: 'failed', error: rootCause(err) ?? String(err) };
    await CancellationScope.nonCancellable(() => finishConnectionOperation(end));
    throw err;
  }
  await finishConnectionOperation({
    operationId,
    status: statusOf(result),
    result: result as unknown as Record<string, unknown>,
  });
  return result;
}

/** Tables of one connection refreshed at once (seed 004: 4); each copy holds one remote connection. */
export const connectionDataRefreshParallelism = 4;

export interface TableDataRefreshInput {
  tenantId: string;
  connectionId: string;
  schemaName: string;
  tableName: string;
  graceSeconds: number;
  /** The operation row `POST /refresh` recorded, finished by this workflow; absent for a child. */
  operationId?: string;
}

/** Seed 004's table data refresh body. */
export interface TableDataRefreshResult {
  connection_id: string;
  schema_name: string;
  table_name: string;
  rows_synced: number;
  duration_ms: number;
}

/** Seed 004's connection data refresh body. */
export interface ConnectionDataRefreshResult {
  connection_id: string;
  tables_refreshed: number;
  tables_failed: number;
  total_rows: number;
  duration_ms: number;
  errors: { schema_name: string; table_name: string; error: string }[];
}

/**
 * Seed 004's table data refresh: the remote table copied into a new version, swapped in at the
 * stable name, the previous version's deletion armed on a durable timer that outlives this workflow.
 * Its workflow id is the table's, so Temporal runs one at a time per table.
 */
export async function tableDataRefreshWorkflow(
  input: TableDataRefreshInput,
): Promise<TableDataRefreshResult> {
  return asOperation(
    input.operationId,
    () => refreshTable(input),
    () => 'success',
  );
}

async function refreshTable(input: TableDataRefreshInput): Promise<TableDataRefreshResult> {
  const started = Date.now();
  const { graceSeconds, operationId: _operation, ...table } = input;
  // Chosen here, recorded in history: every attempt of the copy builds the same version.
  const suffix = uuid4().replaceAll('-', '').slice(0, 8);
  const copied = await copyTable({ ...table, suffix });
  const swapped = await swapCachedTable({
    ...table,
    versionTable: copied.versionTable,
    rows: copied.rows,
    graceSeconds,
  });
  if (swapped.previous) await armDeletion(swapped.previous, swapped.version);
  return {
    connection_id: input.connectionId,
    schema_name: input.schemaName,
    table_name: input.tableName,
    rows_synced: swapped.rows,
    duration_ms: Date.now() - started,
  };
}

/**
 * The previous version's deletion, on a durable timer that outlives this refresh. A worker's
 * start-up sweep re-arms every pending deletion under the same workflow id, so after a crash
 * between the swap and this start it may have armed this one already: that is the outcome wanted.
 */
async function armDeletion(
  previous: { table: string; deletionId: string; dueAt: string },
  version: string,
): Promise<void> {
  await armPendingDeletion({
    id: previous.deletionId,
    dueAt: previous.dueAt,
    trigger: 'data_refresh',
    summary: `drop ${previous.table} at ${previous.dueAt} (the version ${version} replaced)`,
  });
}

type Outcome = { ok: true; rows: number } | { ok: false; error: string };

/**
 * Seed 004's connection data refresh: every table of the connection's catalog, a child workflow
 * each (under the table's own id), `parallelism` at a time. A worker crash resumes here without
 * copying finished tables again: their children's results are in this history. One table's failure
 * is recorded and the others carry on.
 */
export async function connectionDataRefreshWorkflow(
  input: ConnectionDataRefreshInput,
): Promise<ConnectionDataRefreshResult> {
  return asOperation(
    input.operationId,
    () => refreshConnection(input),
    (r) => (r.tables_failed === 0 ? 'success' : r.tables_refreshed > 0 ? 'partial_failure' : 'failed'),
  );
}

export interface ConnectionDataRefreshInput {
  tenantId: string;
  connectionId: string;
  graceSeconds: number;
  parallelism?: number;
  /** The operation row `POST /refresh` recorded, finished by this workflow. */
  operationId?: string;
}

async function refreshConnection(input: ConnectionDataRefreshInput): Promise<ConnectionDataRefreshResult> {
  const started = Date.now();
  const tables = await listCachedTables({ connectionId: input.connectionId });
  const refreshOne = async (t: { schemaName: string; tableName: string }): Promise<Outcome> => {
    try {
      const r = await executeChild(tableDataRefreshWorkflow, {
        workflowId: workflowIds.tableDataRefresh(input.connectionId, t.schemaName, t.tableName),
        args: [
          {
            ...t,
            tenantId: input.tenantId,
            connectionId: input.connectionId,
            graceSeconds: input.graceSeconds,
          },
        ],
        typedSearchAttributes: childSearchAttributes(workflowInfo().typedSearchAttributes, {
          operation: 'data_refresh',
          trigger: 'connection_data_refresh',
        }),
        staticSummary: `data refresh of ${t.schemaName}.${t.tableName}`,
      });
      return { ok: true, rows: r.rows_synced };
    } catch (err) {
      // A cancelled refresh stops; anything else is this table's outcome.
      if (isCancellation(err)) throw err;
      if (err instanceof WorkflowExecutionAlreadyStartedError)
        return { ok: false, error: 'a data refresh of this table is already running' };
      return { ok: false, error: rootCause(err) ?? String(err) };
    }
  };
  const outcomes = await inLanes(tables, input.parallelism ?? connectionDataRefreshParallelism, refreshOne);

  return connectionResult(input.connectionId, tables, outcomes, started);
}

/** Seed 004's connection body from each table's outcome, in the tables' order. */
export function connectionResult(
  connectionId: string,
  tables: { schemaName: string; tableName: string }[],
  outcomes: Outcome[],
  started: number,
): ConnectionDataRefreshResult {
  const result: ConnectionDataRefreshResult = {
    connection_id: connectionId,
    tables_refreshed: 0,
    tables_failed: 0,
    total_rows: 0,
    duration_ms: Date.now() - started,
    errors: [],
  };
  outcomes.forEach((o, i) => {
    if (o.ok) {
      result.tables_refreshed += 1;
      result.total_rows += o.rows;
    } else {
      result.tables_failed += 1;
      result.errors.push({
        schema_name: tables[i]!.schemaName,
        table_name: tables[i]!.tableName,
        error: o.error,
      });
    }
  });
  return result;
}
