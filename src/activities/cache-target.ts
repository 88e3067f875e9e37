import { ApplicationFailure } from '@temporalio/activity';
import type postgres from 'postgres';
import { cachedTableName } from '../catalog/cache-names.js';
import type { Sql } from '../db/client.js';
import { AppError } from '../domain/errors.js';
import {
  type CatalogColumn,
  isDatabaseKind,
  type PostgresConnectionConfig,
  postgresConnectionConfigSchema,
} from '../sources/postgres.js';
import { claimCachedTable } from '../tenancy/ownership.js';

/** A remote table of a database connection and where its cache lives, read fresh from Postgres. */
export interface CacheTarget {
  tenantId: string;
  connectionId: string;
  config: PostgresConnectionConfig;
  schemaName: string;
  tableName: string;
  columns: CatalogColumn[];
  cachedVersion: string | null;
  /** The cached table's stable name in `config.cache_schema`. */
  stableTable: string;
}

/**
 * The connection and its catalog entry for one table. A connection or table gone from the catalog
 * (deleted, or removed by a schema refresh) fails the refresh for good: retrying cannot bring it back.
 */
export async function loadCacheTarget(
  sql: Sql,
  input: { tenantId: string; connectionId: string; schemaName: string; tableName: string },
  /** The swap takes a table gone from the catalog in its stride (it drops the new version). */
  opts: { allowUncatalogued?: boolean } = {},
): Promise<CacheTarget> {
  const [row] = await sql<
    { kind: string; config: unknown; columns: CatalogColumn[] | null; cachedVersion: string | null }[]
  >`
    select c.kind, c.config, t.columns, t.cached_version as "cachedVersion"
    from autoloader.connections c
    left join autoloader.connection_tables t
      on t.connection_id = c.id and t.schema_name = ${input.schemaName} and t.table_name = ${input.tableName}
    where c.id = ${input.connectionId} and c.tenant_id = ${input.tenantId}`;
  if (!row)
    throw ApplicationFailure.nonRetryable(
      'connection not found (deleted during the refresh)',
      'ConnectionNotFound',
    );
  if (!isDatabaseKind(row.kind))
    throw ApplicationFailure.nonRetryable(
      `a ${row.kind} connection has no cached tables`,
      'SourceConfigError',
    );
  if (!row.columns && !opts.allowUncatalogued)
    throw ApplicationFailure.nonRetryable(
      `${input.schemaName}.${input.tableName} is not in the connection’s catalog (removed by a schema refresh)`,
      'TableNotFound',
    );
  const parsed = postgresConnectionConfigSchema.safeParse(row.config);
  if (!parsed.success)
    throw ApplicationFailure.nonRetryable(
      `the stored configuration is not valid: ${parsed.error.issues[0]?.message}`,
      'SourceConfigError',
    );
  return {
    tenantId: input.tenantId,
    connectionId: input.connectionId,
    config: parsed.data,
    schemaName: input.schemaName,
    tableName: input.tableName,
    columns: [...(row.columns ?? [])].sort((a, b) => a.position - b.position),
    cachedVersion: row.cachedVersion,
    stableTable: cachedTableName(input.schemaName, input.tableName),
  };
}

/**
 * Claims the target's stable name for its connection (src/tenancy/ownership.ts). A refusal is for
 * good — the name is another tenant's, an ingestion's, or a table the service did not make — so it
 * fails the refresh instead of being retried.
 */
export async function claimCacheTarget(tx: postgres.TransactionSql, target: CacheTarget): Promise<void> {
  try {
    await claimCachedTable(tx, {
      tenantId: target.tenantId,
      connectionId: target.connectionId,
      schema: target.config.cache_schema,
      table: target.stableTable,
    });
  } catch (err) {
    if (err instanceof AppError && err.code === 'DESTINATION_UNAVAILABLE')
      throw ApplicationFailure.nonRetryable(
        `${target.config.cache_schema}.${target.stableTable} is not available to this connection (another tenant’s or ingestion’s table, or one the service did not create)`,
        'DestinationUnavailable',
      );
    throw err;
  }
}
