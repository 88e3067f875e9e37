import { WorkflowFailedError } from '@temporalio/client';
import { eq } from 'drizzle-orm';
import { z } from 'zod';
import type { SchemaRefreshOutcome } from '../activities/discover-tables.js';
import { catalogHasTable } from '../catalog/connection-tables.js';
import { connections } from '../db/schema/index.js';
import { AppError } from '../domain/errors.js';
import { newId } from '../lib/ids.js';
import { isDatabaseKind } from '../sources/index.js';
import { workflowIds } from '../temporal/ids.js';
import { schemaRefreshWorkflow } from '../workflows/index.js';
import { getConnection } from './connections.js';
import type { ServiceDeps } from './deps.js';

/** Seed 004's request to `POST /refresh`, shape only; the rules between fields are refreshRequestProblem's. */
export const refreshRequestSchema = z.strictObject({
  connection_id: z.string().min(1).max(64).optional().describe('Our connection id; omit for all'),
  schema_name: z.string().min(1).max(255).optional().describe('Requires connection_id and table_name'),
  table_name: z.string().min(1).max(255).optional().describe('Requires connection_id and schema_name'),
  data: z
    .boolean()
    .default(false)
    .describe('Refresh cached data instead of the schema (not available yet for database connections)'),
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

/**
 * `POST /refresh`: validates the request as seed 004 does, then runs a schema refresh as a Temporal
 * workflow and answers with its result. `{}` covers the tenant's database connections (object-store
 * connections have no remote tables and are left out); a named connection must be a database one.
 */
export async function refreshConnections(
  deps: Pick<ServiceDeps, 'db' | 'sql' | 'temporal' | 'taskQueue'>,
  tenantId: string,
  req: RefreshRequestBody,
): Promise<SchemaRefreshResult> {
  const problem = refreshRequestProblem(req);
  if (problem) throw problem;

  let connectionIds: string[];
  let workflowId: string;
  if (req.connection_id !== undefined) {
    const conn = await getConnection(deps, tenantId, req.connection_id);
    if (req.data) {
      if (req.schema_name !== undefined && req.table_name !== undefined) {
        const known = await catalogHasTable(deps.sql, conn.id, req.schema_name, req.table_name);
        if (!known)
          throw new AppError('TABLE_NOT_FOUND', 'Table not found in the connection’s catalog', {
            help: 'Run a schema refresh ({"connection_id": …}) to discover new tables',
          });
      }
      throw invalid('data', `data refresh of ${conn.kind} connections is not available yet`);
    }
    if (!isDatabaseKind(conn.kind))
      throw invalid(
        'connection_id',
        `schema refresh of ${conn.kind} connections is not available yet; it discovers the tables of database (postgres) connections`,
      );
    connectionIds = [conn.id];
    workflowId = workflowIds.connectionSchemaRefresh(conn.id, newId('sr'));
  } else {
    const rows = await deps.db
      .select({ id: connections.id, kind: connections.kind })
      .from(connections)
      .where(eq(connections.tenantId, tenantId))
      .orderBy(connections.id);
    connectionIds = rows.filter((r) => isDatabaseKind(r.kind)).map((r) => r.id);
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
  return summarise(outcomes);
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
