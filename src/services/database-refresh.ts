import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowFailedError,
  type WorkflowHandle,
} from '@temporalio/client';
import { ApplicationFailure, type Workflow } from '@temporalio/common';
import { eq } from 'drizzle-orm';
import { z } from 'zod';
import type { SchemaRefreshOutcome } from '../activities/discover-tables.js';
import type { Principal } from '../auth/tokens.js';
import { catalogHasTable } from '../catalog/connection-tables.js';
import { connections } from '../db/schema/index.js';
import { AppError, errors } from '../domain/errors.js';
import { newId } from '../lib/ids.js';
import { isDatabaseKind } from '../sources/index.js';
import { workflowIds } from '../temporal/ids.js';
import { searchAttributePairs } from '../temporal/search-attributes.js';
import type { ConnectionDataRefreshResult, TableDataRefreshResult } from '../workflows/data-refresh.js';
import {
  connectionDataRefreshWorkflow,
  schemaRefreshWorkflow,
  storeDataRefreshWorkflow,
  tableDataRefreshWorkflow,
} from '../workflows/index.js';
import type { StoreTable } from '../workflows/store-data-refresh.js';
import { checkLargeBatch, mapLimited, sumImpacts } from './batch-refresh.js';
import { getConnection } from './connections.js';
import type { ServiceDeps } from './deps.js';
import { computeImpact } from './impact.js';
import { isBusy, refuseIfBusy } from './operations.js';
import { checkRateLimit, estimateSource } from './refresh.js';

/** Seed 004's request to `POST /refresh`, shape only; the rules between fields are refreshRequestProblem's. */
export const refreshRequestSchema = z.strictObject({
  connection_id: z.string().min(1).max(64).optional().describe('Our connection id; omit for all'),
  schema_name: z.string().min(1).max(255).optional().describe('Requires connection_id and table_name'),
  table_name: z.string().min(1).max(255).optional().describe('Requires connection_id and schema_name'),
  data: z
    .boolean()
    .default(false)
    .describe(
      'Refresh cached data instead of the schema: one table (with schema_name and table_name) or every table of the connection',
    ),
  confirm: z
    .boolean()
    .optional()
    .describe(
      'Must be true for a data refresh of an object-store connection: it is a full refresh (swap) of each of its ingestions. Not needed for database connections (nothing is lost until the grace period ends)',
    ),
});
export type RefreshRequestBody = z.output<typeof refreshRequestSchema>;

const invalid = (field: string, message: string) =>
  new AppError('VALIDATION_ERROR', `Invalid body: ${message}`, { field });

/** Seed 004's validation rules and handler cases, in its order, with its messages. */
export function refreshRequestProblem(req: RefreshRequestBody): AppError | undefined {
  if (req.schema_name !== undefined && req.connection_id === undefined)
    return invalid('schema_name', 'schema_name requires connection_id');
  if (req.table_name !== undefined && req.schema_name === undefined)
    return invalid('table_name', 'table_name requires schema_name');
  if (req.data && req.connection_id === undefined)
    return invalid('data', 'data refresh requires connection_id');
  if (req.schema_name !== undefined && req.table_name === undefined)
    return req.data
      ? invalid('table_name', 'data refresh with schema_name requires table_name')
      : invalid(
          'schema_name',
          'schema-level refresh not supported; omit schema_name to refresh entire connection',
        );
  if (req.table_name !== undefined && !req.data)
    return invalid(
      'table_name',
      'schema refresh cannot target specific table; use data: true for table data refresh',
    );
  return undefined;
}

/** Seed 004's schema refresh body, with each connection whose remote could not be read. */
export interface SchemaRefreshResult {
  connections_refreshed: number;
  tables_discovered: number;
  tables_added: number;
  tables_removed: number;
  tables_modified: number;
  /** Only when some connection's remote could not be read (seed 004's body has no such field). */
  errors?: { connection_id: string; error: string }[];
}

/** How long the request waits for the workflow; its activities' own timeouts are far shorter. */
const schemaRefreshTimeout = '2 minutes';

/** What `POST /refresh` answers: seed 004's body, or 202 while a data refresh goes on. */
export type RefreshAnswer =
  | { status: 200; body: SchemaRefreshResult | TableDataRefreshResult | ConnectionDataRefreshResult }
  | {
      status: 202;
      body: { status: 'running'; operation_id: string; operation_url: string; workflow_id: string };
    };

/**
 * `POST /refresh`: validates the request as seed 004 does, then runs a schema refresh or a data
 * refresh as a Temporal workflow. `{}` covers every connection of the tenant. A database
 * connection's tables are the remote's; an object-store connection's are its ingestions'
 * destination tables, and their data refresh is a swap full refresh of each ingestion.
 */
export async function refreshConnections(
  deps: Pick<ServiceDeps, 'db' | 'sql' | 'temporal' | 'taskQueue' | 'refresh' | 'runDefaults'>,
  principal: Principal,
  req: RefreshRequestBody,
): Promise<RefreshAnswer> {
  const { tenantId } = principal;
  const problem = refreshRequestProblem(req);
  if (problem) throw problem;

  let connectionIds: string[];
  let workflowId: string;
  if (req.connection_id !== undefined) {
    const conn = await getConnection(deps, tenantId, req.connection_id);
    if (req.data) {
      if (!isDatabaseKind(conn.kind)) return storeDataRefresh(deps, principal, conn.id, req);
      if (req.schema_name !== undefined && req.table_name !== undefined) {
        const known = await catalogHasTable(deps.sql, conn.id, req.schema_name, req.table_name);
        if (!known)
          throw new AppError('TABLE_NOT_FOUND', 'Table not found in the connection’s catalog', {
            help: 'Run a schema refresh ({"connection_id": …}) to discover new tables',
          });
      }
      return databaseDataRefresh(deps, principal, conn.id, req.schema_name, req.table_name);
    }
    connectionIds = [conn.id];
    workflowId = workflowIds.connectionSchemaRefresh(conn.id, newId('sr'));
  } else {
    const rows = await deps.db
      .select({ id: connections.id })
      .from(connections)
      .where(eq(connections.tenantId, tenantId))
      .orderBy(connections.id);
    connectionIds = rows.map((r) => r.id);
    workflowId = workflowIds.tenantSchemaRefresh(tenantId, newId('sr'));
  }

  const outcomes =
    connectionIds.length === 0
      ? []
      : await deps.temporal.workflow
          .execute(schemaRefreshWorkflow, {
            workflowId,
            taskQueue: deps.taskQueue,
            args: [{ tenantId, connectionIds }],
            workflowExecutionTimeout: schemaRefreshTimeout,
          })
          .catch((err: unknown) => {
            if (err instanceof WorkflowFailedError)
              throw new AppError(
                'SERVICE_UNAVAILABLE',
                `The schema refresh did not finish within ${schemaRefreshTimeout} (the state database or Temporal is failing)`,
                { workflow_id: workflowId },
              );
            throw err;
          });
  return { status: 200, body: summarise(outcomes) };
}

type Deps = Pick<ServiceDeps, 'sql' | 'temporal' | 'taskQueue' | 'refresh' | 'runDefaults'>;

/** Options every data refresh workflow starts with; the workflow id makes it one at a time. */
type StartCommon = {
  workflowId: string;
  taskQueue: string;
  memo: { operationId: string };
  typedSearchAttributes: ReturnType<typeof searchAttributePairs>;
  workflowIdConflictPolicy: 'FAIL';
};

/**
 * Seed 004's data refresh of a database connection's table (schema and table named) or of every
 * table of its catalog. Not destructive (the previous version survives the grace period), so no
 * `confirm`.
 */
function databaseDataRefresh(
  deps: Deps,
  principal: Principal,
  connectionId: string,
  schemaName: string | undefined,
  tableName: string | undefined,
): Promise<RefreshAnswer> {
  const { tenantId } = principal;
  const graceSeconds = deps.refresh.swapGraceSeconds;
  if (schemaName !== undefined && tableName !== undefined)
    return dataRefresh(deps, principal, {
      connectionId,
      oneTable: { schemaName, tableName },
      start: (common) =>
        deps.temporal.workflow.start(tableDataRefreshWorkflow, {
          ...common,
          args: [
            {
              tenantId,
              connectionId,
              schemaName,
              tableName,
              graceSeconds,
              operationId: common.memo.operationId,
            },
          ],
          staticSummary: `data refresh of ${schemaName}.${tableName} of connection ${connectionId}`,
        }),
    });
  return dataRefresh(deps, principal, {
    connectionId,
    start: (common) =>
      deps.temporal.workflow.start(connectionDataRefreshWorkflow, {
        ...common,
        args: [
          {
            tenantId,
            connectionId,
            graceSeconds,
            parallelism: deps.refresh.connectionParallelism,
            operationId: common.memo.operationId,
          },
        ],
        staticSummary: `data refresh of every table of connection ${connectionId}`,
      }),
  });
}

/**
 * Data refresh of an object-store connection (s3, local, gcs, …): its tables are its ingestions'
 * destination tables, and each is refreshed by seed 001's swap full refresh of its ingestion,
 * at most CONNECTION_REFRESH_PARALLELISM at once. A full refresh reloads every file, so it needs
 * `confirm: true` and the `ingestion:refresh` permission like any full refresh; the whole refresh
 * counts once against the rate limit, and the large-operation rule applies to its total cost.
 */
async function storeDataRefresh(
  deps: Deps,
  principal: Principal,
  connectionId: string,
  req: RefreshRequestBody,
): Promise<RefreshAnswer> {
  const { tenantId } = principal;
  if (!principal.permissions.includes('ingestion:refresh'))
    throw errors.insufficientPermissions('ingestion:refresh');
  if (req.confirm !== true) throw errors.confirmationRequired();
  const ingestions = await deps.sql<{ id: string; schemaName: string; tableName: string }[]>`
    select id, destination_schema as "schemaName", destination_table as "tableName"
    from autoloader.ingestions
    where connection_id = ${connectionId} and tenant_id = ${tenantId}
      ${req.schema_name !== undefined ? deps.sql`and destination_schema = ${req.schema_name} and destination_table = ${req.table_name ?? ''}` : deps.sql``}
    order by destination_schema, destination_table`;
  const oneTable =
    req.schema_name !== undefined && req.table_name !== undefined
      ? { schemaName: req.schema_name, tableName: req.table_name }
      : undefined;
  if (oneTable && ingestions.length === 0)
    throw new AppError('TABLE_NOT_FOUND', 'No ingestion of this connection loads that table', {
      help: 'GET /connections/{id}/tables lists the tables of the connection’s ingestions',
    });
  if (ingestions.length === 0)
    return {
      status: 200,
      body: {
        connection_id: connectionId,
        tables_refreshed: 0,
        tables_failed: 0,
        total_rows: 0,
        duration_ms: 0,
        errors: [],
      },
    };
  // One table: its ingestion busy is the answer, naming what holds it (a connection refresh
  // reports a busy member in its errors instead).
  if (oneTable)
    await refuseIfBusy(
      deps.temporal,
      ingestions[0]!.id,
      'An operation is running on the ingestion that loads this table',
    );
  await checkRateLimit(deps, { type: 'full_refresh', principal });
  // A busy ingestion is not estimated: its load may hold its table locked, and the estimate reads
  // the table. Its member will find it busy and report so (or, freed meanwhile, refresh it).
  const impacts = await mapLimited(ingestions, deps.refresh.connectionParallelism, async (i) => {
    if (await isBusy(deps.temporal, i.id)) return undefined;
    return computeImpact('full_refresh', true, await estimateSource(deps, i.id), deps.refresh);
  });
  try {
    await checkLargeBatch(
      deps,
      { type: 'full_refresh', principal },
      sumImpacts(impacts.filter((i) => i !== undefined)),
    );
  } catch (err) {
    if (err instanceof AppError && err.code === 'DRY_RUN_REQUIRED')
      throw new AppError('DRY_RUN_REQUIRED', err.message.replace('Batch', 'This data refresh'), {
        help: `Refreshes above $${deps.refresh.largeOperationUsd} in total need a dry run first: POST /api/v1/batch-refresh with these ingestions' ids, "operation": "full_refresh" and "dry_run": true, within the hour before`,
        ingestion_ids: ingestions.map((i) => i.id),
      });
    throw err;
  }
  const tables: StoreTable[] = ingestions.map((i, n) => ({
    ingestionId: i.id,
    schemaName: i.schemaName,
    tableName: i.tableName,
    table: `${i.schemaName}.${i.tableName}`,
    operationId: newId('op'),
    runId: newId('run'),
    impact: { ...impacts[n] },
    warnings: [],
    notes: [],
  }));
  return dataRefresh(deps, principal, {
    connectionId,
    oneTable,
    fullRefresh: true,
    start: (common) =>
      deps.temporal.workflow.start(storeDataRefreshWorkflow, {
        ...common,
        args: [
          {
            tenantId,
            connectionId,
            operationId: common.memo.operationId,
            requestedBy: principal.subject,
            oneTable: oneTable !== undefined,
            tables,
            run: deps.runDefaults,
            graceSeconds: deps.refresh.swapGraceSeconds,
            parallelism: deps.refresh.connectionParallelism,
          },
        ],
        staticSummary: oneTable
          ? `data refresh (swap full refresh) of ${oneTable.schemaName}.${oneTable.tableName} of connection ${connectionId}`
          : `data refresh (swap full refresh) of the ${tables.length} ingestions of connection ${connectionId}`,
      }),
  });
}

/**
 * Runs a data refresh under the table's (or connection's) own workflow id, so a second one while it
 * runs is 409 RUN_IN_PROGRESS naming the running workflow. Recorded as an operation of the
 * connection and audited. The answer waits up to REFRESH_RESPONSE_WAIT_MS for the result, else 202
 * with the operation's id; the operation's `result` is the seed's body when the workflow ends.
 */
async function dataRefresh(
  deps: Deps,
  principal: Principal,
  run: {
    connectionId: string;
    oneTable?: { schemaName: string; tableName: string };
    /** Full refreshes of ingestions (object stores): counted once against the rate limit. */
    fullRefresh?: boolean;
    start: (common: StartCommon) => Promise<WorkflowHandle<Workflow>>;
  },
): Promise<RefreshAnswer> {
  const { tenantId } = principal;
  const { connectionId, oneTable } = run;
  const workflowId = oneTable
    ? workflowIds.tableDataRefresh(connectionId, oneTable.schemaName, oneTable.tableName)
    : workflowIds.connectionDataRefresh(connectionId);
  const type = oneTable ? 'table_data_refresh' : 'connection_data_refresh';
  const operationId = newId('op');
  const target = {
    connection_id: connectionId,
    schema_name: oneTable?.schemaName ?? null,
    table_name: oneTable?.tableName ?? null,
  };
  // The operation row exists before the workflow starts: the workflow's last activity finishes it.
  // Its memo names the operation, so POST /operations/{id}/cancel can cancel it.
  await deps.sql.begin(async (tx) => {
    await tx`
      insert into autoloader.operations (id, connection_id, tenant_id, type, status, requested_by, auto_run, workflow_id, impact)
      values (${operationId}, ${connectionId}, ${tenantId}, ${type}, 'running', ${principal.subject}, false, ${workflowId},
              ${tx.json(target)})`;
    await tx`
      insert into autoloader.audit_events (tenant_id, subject, action, operation_id, dry_run, impact, result)
      values (${tenantId}, ${principal.subject}, ${type}, ${operationId}, false,
              ${tx.json({ ...target, workflow_id: workflowId, ...(run.fullRefresh ? { operation: 'full_refresh', batch_id: operationId } : {}) })}, 'accepted')`;
  });
  let handle: WorkflowHandle<Workflow>;
  try {
    handle = await run.start({
      workflowId,
      taskQueue: deps.taskQueue,
      memo: { operationId },
      typedSearchAttributes: searchAttributePairs({ tenantId, operation: 'data_refresh', trigger: 'manual' }),
      workflowIdConflictPolicy: 'FAIL',
    });
  } catch (err) {
    // Not started: no operation (and no audit event) says it was.
    await deps.sql.begin(async (tx) => {
      await tx`delete from autoloader.audit_events where operation_id = ${operationId}`;
      await tx`delete from autoloader.operations where id = ${operationId}`;
    });
    if (err instanceof WorkflowExecutionAlreadyStartedError)
      throw errors.runInProgress(
        workflowId,
        oneTable ? 'A data refresh of this table is running' : 'A data refresh of this connection is running',
      );
    throw err;
  }

  let timer: NodeJS.Timeout | undefined;
  const waited = await Promise.race([
    handle.result().then(
      (body: unknown) => ({ done: true as const, body }),
      (err: unknown) => ({ done: true as const, err }),
    ),
    new Promise<{ done: false }>((resolve) => {
      timer = setTimeout(() => resolve({ done: false }), deps.refresh.responseWaitMs);
    }),
  ]).finally(() => clearTimeout(timer));
  if (!waited.done)
    return {
      status: 202,
      body: {
        status: 'running',
        operation_id: operationId,
        operation_url: `/api/v1/operations/${operationId}`,
        workflow_id: workflowId,
      },
    };
  if ('err' in waited) throw dataRefreshError(waited.err, workflowId);
  return { status: 200, body: waited.body as TableDataRefreshResult | ConnectionDataRefreshResult };
}

/**
 * A table data refresh that failed, as the API answers it: the remote table gone is 404 (a schema
 * refresh removes it from the catalog); a name another tenant, an ingestion or a table the service
 * did not make holds is 409 DESTINATION_UNAVAILABLE; a swap that would break readers 409
 * DEPENDENT_OBJECTS; a remote that could not be read or copied 503, saying why.
 */
function dataRefreshError(err: unknown, workflowId: string): unknown {
  if (!(err instanceof WorkflowFailedError)) return err;
  let root: unknown = err.cause;
  while (root instanceof Error && root.cause && !(root instanceof ApplicationFailure)) root = root.cause;
  const message = root instanceof Error ? root.message : String(err.message);
  const type = root instanceof ApplicationFailure ? root.type : undefined;
  if (type === 'RemoteTableMissing' || type === 'TableNotFound')
    return new AppError('TABLE_NOT_FOUND', `The remote table could not be read: ${message}`, {
      help: 'Run a schema refresh ({"connection_id": …}) to bring the catalog up to date',
      workflow_id: workflowId,
    });
  if (type === 'DestinationUnavailable')
    return new AppError('DESTINATION_UNAVAILABLE', 'This cached table name is not available to this tenant', {
      help: 'Choose another cache_schema for the connection',
      workflow_id: workflowId,
    });
  if (type === 'SwapRefused') return new AppError('DEPENDENT_OBJECTS', message, { workflow_id: workflowId });
  if (type === 'IngestionBusy')
    return errors.runInProgress(undefined, 'An operation is running on the ingestion that loads this table');
  return new AppError('SERVICE_UNAVAILABLE', `The data refresh failed: ${message}`, {
    workflow_id: workflowId,
  });
}

function summarise(outcomes: SchemaRefreshOutcome[]): SchemaRefreshResult {
  const result: SchemaRefreshResult = {
    connections_refreshed: 0,
    tables_discovered: 0,
    tables_added: 0,
    tables_removed: 0,
    tables_modified: 0,
  };
  const errors: { connection_id: string; error: string }[] = [];
  for (const o of outcomes) {
    if (!o.ok) {
      errors.push({ connection_id: o.connectionId, error: o.error });
      continue;
    }
    result.connections_refreshed += 1;
    result.tables_discovered += o.tablesDiscovered;
    result.tables_added += o.tablesAdded;
    result.tables_removed += o.tablesRemoved;
    result.tables_modified += o.tablesModified;
  }
  return errors.length > 0 ? { ...result, errors } : result;
}
