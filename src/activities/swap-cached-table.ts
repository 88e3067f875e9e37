import { ApplicationFailure, log } from '@temporalio/activity';
import { asideCacheName } from '../catalog/cache-names.js';
import { SwapRefused } from '../destination/carry-over.js';
import { dropIfExists, swapIn, tableExists } from '../destination/table.js';
import { newId } from '../lib/ids.js';
import { claimCacheTarget, loadCacheTarget } from './cache-target.js';
import type { ActivityDeps } from './deps.js';

export interface CachedTableSwap {
  /** `<cache_schema>.<stable name>`. */
  table: string;
  version: string;
  rows: number;
  /** The previous version, renamed aside and queued for deletion; null on a first copy. */
  previous: { table: string; deletionId: string; dueAt: string } | null;
}

/** As in the swap full refresh: readers queue behind the waiting rename, so the wait is short. */
const swapLockTimeout = '5s';

/**
 * Seed 004's atomic swap for a cached table, in one transaction: the stable name's current version
 * is renamed aside and the new version takes the stable name (with the grants, indexes, policies,
 * comments and views users added to it, as the swap full refresh carries them over), the catalog
 * records the version, its rows and bytes and when it was synced, and the previous version is queued
 * in autoloader.pending_deletions for after the grace period. Readers block for the instant of the
 * rename and then see the new version. Idempotent: a retry after the commit finds the catalog already
 * at this version and answers as the first attempt did.
 */
export function makeSwapCachedTable({ sql }: ActivityDeps) {
  return async function swapCachedTable(input: {
    tenantId: string;
    connectionId: string;
    schemaName: string;
    tableName: string;
    versionTable: string;
    rows: number;
    graceSeconds: number;
  }): Promise<CachedTableSwap> {
    const target = await loadCacheTarget(sql, input, { allowUncatalogued: true });
    const schema = target.config.cache_schema;
    const live = { schema, table: target.stableTable };
    const version = { schema, table: input.versionTable };
    const aside = asideCacheName(target.stableTable, input.versionTable);
    const outcome = await sql.begin(async (tx): Promise<CachedTableSwap | { refused: string }> => {
      const [cat] = await tx<{ cachedVersion: string | null; rows: number | null }[]>`
        select cached_version as "cachedVersion", rows_cached::float8 as rows
        from autoloader.connection_tables
        where connection_id = ${input.connectionId} and schema_name = ${input.schemaName}
          and table_name = ${input.tableName}
        for update`;
      if (!cat) {
        await dropIfExists(tx, version);
        return { refused: `${input.schemaName}.${input.tableName} left the catalog during the refresh` };
      }
      if (cat.cachedVersion === input.versionTable) {
        const [done] = await tx<{ id: string; dueAt: Date }[]>`
          select id, due_at as "dueAt" from autoloader.pending_deletions
          where schema_name = ${schema} and table_name = ${aside} and tenant_id = ${input.tenantId}`;
        return {
          table: `${schema}.${live.table}`,
          version: input.versionTable,
          rows: cat.rows ?? input.rows,
          previous: done
            ? { table: `${schema}.${aside}`, deletionId: done.id, dueAt: done.dueAt.toISOString() }
            : null,
        };
      }
      if (!(await tableExists(tx, version)))
        throw ApplicationFailure.nonRetryable(
          `the new version ${schema}.${input.versionTable} is gone; ${schema}.${live.table} kept as it was`,
          'VersionMissing',
        );
      await claimCacheTarget(tx, target);
      await tx`select set_config('lock_timeout', ${swapLockTimeout}, true)`;
      let hadLive: boolean;
      try {
        ({ hadLive } = await tx.savepoint((sp) => swapIn(sp, live, input.versionTable, aside)));
      } catch (err) {
        if (!(err instanceof SwapRefused)) throw err;
        await dropIfExists(tx, version);
        return { refused: err.message };
      }
      await tx`
        update autoloader.connection_tables
        set cached_version = ${input.versionTable}, rows_cached = ${input.rows},
            bytes_cached = (select pg_total_relation_size(c.oid) from pg_class c
                            join pg_namespace n on n.oid = c.relnamespace
                            where n.nspname = ${schema} and c.relname = ${live.table}),
            last_synced_at = now()
        where connection_id = ${input.connectionId} and schema_name = ${input.schemaName}
          and table_name = ${input.tableName}`;
      let previous: CachedTableSwap['previous'] = null;
      if (hadLive) {
        const id = newId('del');
        const [row] = await tx<{ dueAt: Date }[]>`
          insert into autoloader.pending_deletions (id, tenant_id, schema_name, table_name, due_at)
          values (${id}, ${input.tenantId}, ${schema}, ${aside}, now() + make_interval(secs => ${input.graceSeconds}))
          returning due_at as "dueAt"`;
        previous = { table: `${schema}.${aside}`, deletionId: id, dueAt: row!.dueAt.toISOString() };
      }
      return { table: `${schema}.${live.table}`, version: input.versionTable, rows: input.rows, previous };
    });
    if ('refused' in outcome) {
      log.warn('cached table swap refused', { table: `${schema}.${live.table}`, reason: outcome.refused });
      throw ApplicationFailure.nonRetryable(outcome.refused, 'SwapRefused');
    }
    log.info('cached table swapped', {
      table: outcome.table,
      version: outcome.version,
      previous: outcome.previous?.table,
    });
    return outcome;
  };
}
