import { z } from '@hono/zod-openapi';
import { type CatalogTable, listCatalogTables } from '../../catalog/connection-tables.js';
import { getConnection } from '../../services/connections.js';
import { refreshConnections, refreshRequestSchema } from '../../services/database-refresh.js';
import {
  commonErrors,
  conflictResponse,
  ErrorSchema,
  IdParam,
  jsonBody,
  jsonResponse,
  notFound,
  PageQuery,
} from '../openapi.js';
import { type ApiDeps, apiRoute, newRouter } from '../router.js';

/** Seed 004's database connections: their catalog of remote tables, and `POST /refresh`. */

const CatalogColumnSchema = z.object({
  name: z.string(),
  type: z.string().describe('the remote column’s type, as format_type() writes it'),
  nullable: z.boolean(),
  position: z.number().int().describe('1-based, in the table’s column order'),
});

const ConnectionTable = z
  .object({
    schema_name: z.string().describe('the remote schema, as the remote names it'),
    table_name: z.string().describe('the remote table, as the remote names it'),
    columns: z.array(CatalogColumnSchema),
    column_fingerprint: z.string().describe('sha256 of the columns; a change counts as tables_modified'),
    cached_version: z.string().nullable().describe('the cached table’s current version; null until cached'),
    rows_cached: z.number().nullable(),
    bytes_cached: z.number().nullable(),
    last_synced_at: z.string().nullable(),
    discovered_at: z.string(),
    updated_at: z.string().describe('when a schema refresh last found its columns changed'),
  })
  .openapi('ConnectionTable');

const RefreshRequest = refreshRequestSchema.openapi('ConnectionRefreshRequest', {
  example: { connection_id: 'conn_0123456789abcdef' },
});

const SchemaRefreshResult = z
  .object({
    connections_refreshed: z.number().int(),
    tables_discovered: z.number().int(),
    tables_added: z.number().int(),
    tables_removed: z.number().int(),
    tables_modified: z.number().int().describe('tables whose columns changed'),
    errors: z
      .array(z.object({ connection_id: z.string(), error: z.string() }))
      .optional()
      .describe(
        'present when a connection’s remote could not be read (refused address, login failed, no answer); that connection is not counted',
      ),
  })
  .openapi('SchemaRefreshResult');

// Seed 004's two data refresh bodies.
const TableDataRefreshResult = z
  .object({
    connection_id: z.string(),
    schema_name: z.string(),
    table_name: z.string(),
    rows_synced: z.number().int(),
    duration_ms: z.number().int(),
  })
  .openapi('TableDataRefreshResult', {
    description: 'Table data refresh: rows copied into the new version, now readable at the stable name',
  });

const ConnectionDataRefreshResult = z
  .object({
    connection_id: z.string(),
    tables_refreshed: z.number().int(),
    tables_failed: z.number().int(),
    total_rows: z.number().int(),
    duration_ms: z.number().int(),
    errors: z
      .array(z.object({ schema_name: z.string(), table_name: z.string(), error: z.string() }))
      .describe('one entry per table that failed; the others were refreshed'),
  })
  .openapi('ConnectionDataRefreshResult', {
    description: 'Connection data refresh: every table of the catalog, at most 4 at once',
  });

const DataRefreshRunning = z
  .object({
    status: z.literal('running'),
    operation_id: z.string().describe('the operation recording this data refresh'),
    operation_url: z
      .string()
      .describe('`GET` it to follow the refresh; its `result` is seed 004’s body once it ends'),
    workflow_id: z
      .string()
      .describe(
        'the Temporal workflow of the refresh (the Temporal UI shows it, and each table’s by its own id)',
      ),
  })
  .openapi('DataRefreshRunning');

const RefreshResult = z
  .union([SchemaRefreshResult, TableDataRefreshResult, ConnectionDataRefreshResult])
  .openapi('ConnectionRefreshResult');

function toTableJson(t: CatalogTable) {
  return {
    schema_name: t.schemaName,
    table_name: t.tableName,
    columns: t.columns,
    column_fingerprint: t.columnFingerprint,
    cached_version: t.cachedVersion,
    rows_cached: t.rowsCached,
    bytes_cached: t.bytesCached,
    last_synced_at: t.lastSyncedAt?.toISOString() ?? null,
    discovered_at: t.discoveredAt.toISOString(),
    updated_at: t.updatedAt.toISOString(),
  };
}

export function databaseConnectionsRouter(deps: ApiDeps) {
  const router = newRouter();

  router.openapi(
    apiRoute('connection:read', {
      method: 'get',
      path: '/connections/{id}/tables',
      summary: 'List the tables a schema refresh found in a connection, with their columns',
      description:
        'The connection’s catalog, in (schema, table) order. `POST /refresh` with the connection’s id brings it up to date.',
      request: { params: IdParam, query: PageQuery },
      responses: {
        200: jsonResponse(
          z.object({ items: z.array(ConnectionTable), next_cursor: z.string().nullable() }),
          'Tables',
        ),
        ...commonErrors,
        ...notFound,
      },
    }),
    async (c) => {
      const row = await getConnection(deps, c.get('principal').tenantId, c.req.valid('param').id);
      const page = await listCatalogTables(deps.sql, row.id, c.req.valid('query'));
      return c.json({ items: page.items.map(toTableJson), next_cursor: page.nextCursor }, 200);
    },
  );

  router.openapi(
    apiRoute('connection:refresh', {
      method: 'post',
      path: '/refresh',
      summary: 'Refresh connections’ table catalogs, or the data of their tables (seed 004)',
      description: [
        '`{}` re-discovers the tables of every connection of the tenant; `{"connection_id": …}` those of one. An object-store connection’s tables are its ingestions’ destination tables (columns of each one’s latest schema version): new ingestions count as added, deleted ones as removed, a new schema version as modified. For a database connection, tables are read from the remote’s catalog (restricted to the connection’s `schemas`), new ones added, changed ones (a different column fingerprint) updated, gone ones removed (their cached tables renamed aside and queued in `GET /pending-deletions` for after the grace period); tables that did not change are left as they are, cached data included. A schema refresh runs as a Temporal workflow; the response comes when it ends.',
        'Validation (400 VALIDATION_ERROR, seed 004’s messages): `schema_name requires connection_id`; `table_name requires schema_name`; `data refresh requires connection_id`; `schema-level refresh not supported; omit schema_name to refresh entire connection`; `data refresh with schema_name requires table_name`; `schema refresh cannot target specific table; use data: true for table data refresh`.',
        'Data refresh, `{"connection_id", "schema_name", "table_name", "data": true}`: the remote table is streamed (COPY out of the remote, COPY into the destination database) into a new version under a versioned name `<cache_schema>.<s>__<t>__v<8 hex>`, which then takes the stable name `<cache_schema>.<s>__<t>` in one transaction (grants, indexes, policies, comments and views carried over); readers see the old rows or the new ones, never a missing or half-loaded table. The previous version is listed by `GET /pending-deletions` and dropped after REFRESH_SWAP_GRACE_SECONDS. Column types come from the catalog; types the cache cannot keep as they are become `text`. Answers seed 004’s table body. `{"connection_id", "data": true}` refreshes every table of the connection’s catalog, CONNECTION_REFRESH_PARALLELISM (4) at once, each failure listed in `errors` while the others carry on. Not destructive, so no `confirm`; audited. One data refresh per table (and per connection) at a time: a second is 409 RUN_IN_PROGRESS with the running workflow’s id in `current_run_id`. A remote table gone since the last schema refresh is 404 TABLE_NOT_FOUND; a cache name held by another tenant, an ingestion or a table the service did not make is 409 DESTINATION_UNAVAILABLE; a remote that cannot be read is 503 saying why.',
        'A data refresh is recorded as an operation of the connection (type `table_data_refresh` or `connection_data_refresh`). The answer waits up to REFRESH_RESPONSE_WAIT_MS for the result; a data refresh still going then is 202 `{status: "running", operation_id, operation_url, workflow_id}` and goes on. `GET /operations/{id}` shows it `running`, then `success` (a connection refresh with some tables failed: `partial_failure`; all failed, or a table refresh that failed: `failed` with `error`; cancelled by `POST /operations/{id}/cancel`: `cancelled`), its `result` then holding the body the 200 would have carried.',
        'Data refresh of an object-store connection (s3, local, gcs, azure, sftp, ftp): seed 001’s swap full refresh of each of its ingestions (or, with `schema_name` and `table_name`, of the one loading that table), CONNECTION_REFRESH_PARALLELISM (4) at once, each a child workflow under the ingestion’s own id and its own `full_refresh` operation. It reloads every file, so it needs `"confirm": true` (else 400 CONFIRMATION_REQUIRED) and the `ingestion:refresh` permission (else 403). A busy ingestion is its table’s entry in `errors` (one table named: 409 RUN_IN_PROGRESS); the whole refresh counts once against the full-refresh rate limit (429 RATE_LIMITED) and the large-operation rule applies to its total (400 DRY_RUN_REQUIRED: preview it with `POST /batch-refresh` and `dry_run`). Answers the same two bodies, `rows_synced`/`total_rows` counting the rows loaded into the new versions.',
      ].join('\n\n'),
      request: { body: jsonBody(RefreshRequest) },
      responses: {
        200: jsonResponse(
          RefreshResult,
          'Seed 004’s schema refresh, table data refresh or connection data refresh body',
        ),
        202: jsonResponse(DataRefreshRunning, 'A data refresh still running after REFRESH_RESPONSE_WAIT_MS'),
        ...commonErrors,
        403: jsonResponse(
          ErrorSchema,
          'The token lacks connection:refresh, or (object-store data refresh) ingestion:refresh (INSUFFICIENT_PERMISSIONS)',
        ),
        404: jsonResponse(
          ErrorSchema,
          'No such connection (CONNECTION_NOT_FOUND) or table (TABLE_NOT_FOUND)',
        ),
        ...conflictResponse(
          'A data refresh of this table or connection, or (object stores) an operation on the ingestion loading the table, is running (RUN_IN_PROGRESS); the cache name is not available (DESTINATION_UNAVAILABLE); the swap would break a reader (DEPENDENT_OBJECTS)',
        ),
        429: jsonResponse(
          ErrorSchema,
          'An object-store data refresh over the full-refresh rate limit (RATE_LIMITED)',
        ),
      },
    }),
    async (c) => {
      const answer = await refreshConnections(deps, c.get('principal'), c.req.valid('json'));
      return answer.status === 202 ? c.json(answer.body, 202) : c.json(answer.body, 200);
    },
  );

  return router;
}
