import { log } from '@temporalio/activity';
import { type CatalogChanges, syncCatalog } from '../catalog/connection-tables.js';
import type { RetiredTable } from '../catalog/retire-cached-tables.js';
import { SecretRefError } from '../secrets/refs.js';
import {
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
    if (!isDatabaseKind(row.kind)) return failed(`a ${row.kind} connection has no remote tables to discover`);
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
