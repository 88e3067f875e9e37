import type { Sql } from '../db/client.js';
import { AppError } from '../domain/errors.js';
import type { CatalogColumn, DiscoveredTable } from '../sources/postgres.js';
import { cachedTableName } from './cache-names.js';
import { type RetiredTable, retireCachedTables } from './retire-cached-tables.js';

/**
 * A database connection's catalog (autoloader.connection_tables): what a schema refresh writes and
 * GET /connections/{id}/tables reads.
 */

export interface CatalogChanges {
  tablesDiscovered: number;
  tablesAdded: number;
  tablesRemoved: number;
  tablesModified: number;
}

/** A table that left the catalog, with the cached version a data refresh would have to clean up. */
export interface RemovedTable {
  schemaName: string;
  tableName: string;
  cachedVersion: string | null;
}

/**
 * Makes the catalog match what the remote has now, in one transaction: new tables added, tables
 * whose columns changed updated (their cached version and figures kept), tables gone removed.
 * Unchanged tables are not written at all. Two refreshes of one connection take turns, so each
 * counts against the catalog the other left. Undefined when the connection is gone. The cached
 * tables of removed ones are renamed aside and queued for deletion after `graceSeconds` (`retired`;
 * the caller arms their timers).
 */
export async function syncCatalog(
  sql: Sql,
  connectionId: string,
  discovered: DiscoveredTable[],
  graceSeconds: number,
): Promise<(CatalogChanges & { removed: RemovedTable[]; retired: RetiredTable[] }) | undefined> {
  return sql.begin(async (tx) => {
    await tx`select pg_advisory_xact_lock(hashtext(${`autoloader.catalog:${connectionId}`}))`;
    // Deleted meanwhile: nothing to write (and the catalog went with it). Held until commit.
    const [conn] = await tx<{ tenantId: string }[]>`
      select tenant_id as "tenantId" from autoloader.connections where id = ${connectionId} for share`;
    if (!conn) return undefined;
    const existing = await tx<{ schemaName: string; tableName: string; columnFingerprint: string }[]>`
      select schema_name as "schemaName", table_name as "tableName", column_fingerprint as "columnFingerprint"
      from autoloader.connection_tables where connection_id = ${connectionId}`;
    const key = (schema: string, table: string) => JSON.stringify([schema, table]);
    const before = new Map(existing.map((e) => [key(e.schemaName, e.tableName), e.columnFingerprint]));
    const now = new Set(discovered.map((d) => key(d.schemaName, d.tableName)));
    const added = discovered.filter((d) => !before.has(key(d.schemaName, d.tableName)));
    const modified = discovered.filter((d) => {
      const fp = before.get(key(d.schemaName, d.tableName));
      return fp !== undefined && fp !== d.fingerprint;
    });
    const gone = existing.filter((e) => !now.has(key(e.schemaName, e.tableName)));

    const written = [...added, ...modified];
    if (written.length > 0) {
      await tx`
        insert into autoloader.connection_tables (connection_id, schema_name, table_name, columns, column_fingerprint)
        select ${connectionId}, w.s, w.t, w.c, w.f
        from jsonb_to_recordset(${JSON.stringify(
          written.map((w) => ({ s: w.schemaName, t: w.tableName, c: w.columns, f: w.fingerprint })),
        )}::text::jsonb) as w(s text, t text, c jsonb, f text)
        on conflict (connection_id, schema_name, table_name) do update
          set columns = excluded.columns, column_fingerprint = excluded.column_fingerprint, updated_at = now()`;
    }
    let removed: RemovedTable[] = [];
    if (gone.length > 0) {
      removed = await tx<RemovedTable[]>`
        delete from autoloader.connection_tables
        where connection_id = ${connectionId}
          and (schema_name, table_name) in (
            select s, t from jsonb_to_recordset(${JSON.stringify(
              gone.map((g) => ({ s: g.schemaName, t: g.tableName })),
            )}::text::jsonb) as g(s text, t text))
        returning schema_name as "schemaName", table_name as "tableName", cached_version as "cachedVersion"`;
    }
    const cached = removed.filter((r) => r.cachedVersion !== null);
    const retired =
      cached.length === 0
        ? []
        : await retireCachedTables(tx, {
            tenantId: conn.tenantId,
            connectionId,
            graceSeconds,
            only: cached.map((r) => cachedTableName(r.schemaName, r.tableName)),
            reason: `removed from the remote, found by the schema refresh at ${new Date().toISOString()}`,
          });
    return {
      tablesDiscovered: discovered.length,
      tablesAdded: added.length,
      tablesRemoved: gone.length,
      tablesModified: modified.length,
      removed,
      retired,
    };
  }) as Promise<(CatalogChanges & { removed: RemovedTable[]; retired: RetiredTable[] }) | undefined>;
}

export interface CatalogTable {
  schemaName: string;
  tableName: string;
  columns: CatalogColumn[];
  columnFingerprint: string;
  cachedVersion: string | null;
  rowsCached: number | null;
  bytesCached: number | null;
  lastSyncedAt: Date | null;
  discoveredAt: Date;
  updatedAt: Date;
}

const encodeCursor = (t: { schemaName: string; tableName: string }) =>
  Buffer.from(JSON.stringify([t.schemaName, t.tableName])).toString('base64url');

function decodeCursor(cursor: string): [string, string] {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(parsed) && parsed.length === 2 && parsed.every((p) => typeof p === 'string'))
      return parsed as [string, string];
  } catch (err) {
    if (!(err instanceof SyntaxError)) throw err;
  }
  throw new AppError('VALIDATION_ERROR', 'Invalid query: cursor: not a next_cursor of this list', {
    field: 'cursor',
  });
}

/** One page of a connection's catalog, in (schema, table) order. */
export async function listCatalogTables(
  sql: Sql,
  connectionId: string,
  page: { limit: number; cursor?: string },
): Promise<{ items: CatalogTable[]; nextCursor: string | null }> {
  const after = page.cursor ? decodeCursor(page.cursor) : undefined;
  const rows = await sql<CatalogTable[]>`
    select schema_name as "schemaName", table_name as "tableName", columns,
           column_fingerprint as "columnFingerprint", cached_version as "cachedVersion",
           rows_cached::float8 as "rowsCached", bytes_cached::float8 as "bytesCached",
           last_synced_at as "lastSyncedAt", discovered_at as "discoveredAt", updated_at as "updatedAt"
    from autoloader.connection_tables
    where connection_id = ${connectionId}
      ${after ? sql`and (schema_name, table_name) > (${after[0]}, ${after[1]})` : sql``}
    order by schema_name, table_name
    limit ${page.limit + 1}`;
  const items = rows.slice(0, page.limit);
  return { items, nextCursor: rows.length > page.limit ? encodeCursor(items[items.length - 1]!) : null };
}

/** Whether the catalog lists the table (a data refresh names one). */
export async function catalogHasTable(
  sql: Sql,
  connectionId: string,
  schemaName: string,
  tableName: string,
): Promise<boolean> {
  const [row] = await sql`
    select 1 from autoloader.connection_tables
    where connection_id = ${connectionId} and schema_name = ${schemaName} and table_name = ${tableName}`;
  return row !== undefined;
}
