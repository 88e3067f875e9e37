import { log } from '@temporalio/activity';
import { type CatalogChanges, syncCatalog } from '../catalog/connection-tables.js';
import type { RetiredTable } from '../catalog/retire-cached-tables.js';
import type { Sql } from '../db/client.js';
import type { SchemaColumn } from '../db/schema/index.js';
import { SecretRefError } from '../secrets/refs.js';
import {
  columnFingerprint,
  type DiscoveredTable,
  discoverRemoteTables,
  isDatabaseKind,
  postgresConnectionConfigSchema,
} from '../sources/postgres.js';
import type { ActivityDeps } from './deps.js';

/** One connection's schema refresh: what changed in its catalog, or why the remote could not be read. */
export type SchemaRefreshOutcome =
  | ({
      connectionId: string;
      ok: true;
      /** Cached tables of removed remote tables, queued for deletion; the workflow arms their timers. */
      retired?: RetiredTable[];
    } & CatalogChanges)
  | { connectionId: string; ok: false; error: string };

/**
 * Reads the remote's tables and makes the connection's catalog match, in one activity: the catalog
 * write is one transaction, and the remote's table list never travels through workflow history
 * (a large database lists thousands of tables).
 *
 * A remote that cannot be read (refused address, wrong password, dead host) is the outcome, not a
 * failure to retry: the caller is waiting, and the error says what to fix. Failures of our own state
 * database propagate, and Temporal retries them.
 */
export function makeDiscoverTables({ sql, sources, refresh }: ActivityDeps) {
  return async function discoverTables(input: {
    tenantId: string;
    connectionId: string;
  }): Promise<SchemaRefreshOutcome> {
    const { tenantId, connectionId } = input;
    const failed = (error: string): SchemaRefreshOutcome => ({ connectionId, ok: false, error });
    const [row] = await sql<{ kind: string; config: unknown }[]>`
      select kind, config from autoloader.connections where id = ${connectionId} and tenant_id = ${tenantId}`;
    if (!row) return failed('connection not found (deleted during the refresh)');
    if (!isDatabaseKind(row.kind)) return syncIngestionTables(sql, connectionId, refresh.swapGraceSeconds);
    const parsed = postgresConnectionConfigSchema.safeParse(row.config);
    if (!parsed.success)
      return failed(`the stored configuration is not valid: ${parsed.error.issues[0]?.message}`);
    const ctx = await sources(tenantId);
    try {
      await ctx.secrets.check(parsed.data.password, 'config.password');
    } catch (err) {
      if (err instanceof SecretRefError) return failed(`${err.field}: ${err.message}`);
      throw err;
    }
    let discovered: DiscoveredTable[];
    try {
      discovered = await discoverRemoteTables(parsed.data, ctx);
    } catch (err) {
      // discoverRemoteTables' errors already say where and what (describeRemoteError).
      if (err instanceof SecretRefError) return failed(`${err.field}: ${err.message}`);
      log.warn('schema refresh could not read the remote', { connectionId, err: String(err) });
      return failed(err instanceof Error ? err.message : String(err));
    }
    const synced = await syncCatalog(sql, connectionId, discovered, refresh.swapGraceSeconds);
    if (!synced) return failed('connection not found (deleted during the refresh)');
    const { removed, retired, ...changes } = synced;
    if (removed.length > 0)
      log.info('tables left the catalog', {
        connectionId,
        tables: removed.map((r) => `${r.schemaName}.${r.tableName}`),
      });
    return { connectionId, ok: true, ...changes, ...(retired.length > 0 ? { retired } : {}) };
  };
}

/**
 * An object-store connection's "tables" are its ingestions' destination tables, with the columns of
 * each one's latest schema version (none before its first load): a new ingestion since the last
 * schema refresh counts as added, a deleted one as removed, a new schema version as modified. Their
 * catalog rows never have cached versions (the tables are the ingestions'), so nothing is retired.
 */
async function syncIngestionTables(
  sql: Sql,
  connectionId: string,
  graceSeconds: number,
): Promise<SchemaRefreshOutcome> {
  const rows = await sql<{ schemaName: string; tableName: string; columns: SchemaColumn[] | null }[]>`
    select i.destination_schema as "schemaName", i.destination_table as "tableName", v.columns
    from autoloader.ingestions i
    left join lateral (
      select columns from autoloader.schema_versions
      where ingestion_id = i.id order by version desc limit 1) v on true
    where i.connection_id = ${connectionId}`;
  const discovered: DiscoveredTable[] = rows.map((r) => {
    const columns = (r.columns ?? []).map((c, i) => ({
      name: c.name,
      type: c.type,
      nullable: true,
      position: i + 1,
    }));
    return {
      schemaName: r.schemaName,
      tableName: r.tableName,
      columns,
      fingerprint: columnFingerprint(columns),
    };
  });
  const synced = await syncCatalog(sql, connectionId, discovered, graceSeconds);
  if (!synced) return { connectionId, ok: false, error: 'connection not found (deleted during the refresh)' };
  const { removed: _removed, retired: _retired, ...changes } = synced;
  return { connectionId, ok: true, ...changes };
}
