import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ApplicationFailure, CancelledFailure, Context, log } from '@temporalio/activity';
import postgres from 'postgres';
import { cacheColumnType, versionedCacheName } from '../catalog/cache-names.js';
import { ensureSchema } from '../destination/table.js';
import { qualified, quoteIdent } from '../load/sql-text.js';
import { SecretRefError } from '../secrets/refs.js';
import { closeRemote, connectRemote, describeRemoteError } from '../sources/postgres.js';
import { type CacheTarget, claimCacheTarget, loadCacheTarget } from './cache-target.js';
import type { ActivityDeps } from './deps.js';

export interface CopiedTable {
  cacheSchema: string;
  stableTable: string;
  /** The new version, complete, under its versioned name; not yet readable at the stable name. */
  versionTable: string;
  rows: number;
}

/** How long the remote COPY waits for a lock on the table before the attempt fails (and is retried). */
const remoteLockTimeout = '30s';

/** Errors that another attempt may not meet: connection lost, lock not granted, serialization, shutdown. */
const transientSqlState = /^(08|40|53|57|55P03)/;

/**
 * Counts rows as they stream by: in COPY's text format every row ends with a newline and newlines
 * inside values are escaped, so rows are newline bytes. Nothing is buffered.
 */
class RowCounter extends Transform {
  rows = 0;
  override _transform(
    chunk: Buffer,
    _enc: BufferEncoding,
    done: (err?: Error | null, data?: Buffer) => void,
  ) {
    for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) this.rows += 1;
    done(null, chunk);
  }
}

/**
 * Seed 004's copy: the remote table streamed into a new version of its cached table, COPY out of
 * the remote piped into COPY into ours inside one transaction, so memory stays flat whatever the
 * size and a failed copy leaves nothing behind. Columns and their types come from the catalog
 * (types the cache cannot keep as they are become text). The stable name is claimed for the
 * connection first, so an ingestion can never take it.
 *
 * The version's name is the workflow's choice (`suffix`): a retry rebuilds the same version
 * instead of leaving another beside it.
 */
export function makeCopyTable({ sql, sources }: ActivityDeps) {
  return async function copyTable(input: {
    tenantId: string;
    connectionId: string;
    schemaName: string;
    tableName: string;
    suffix: string;
  }): Promise<CopiedTable> {
    const target = await loadCacheTarget(sql, input);
    const cacheSchema = target.config.cache_schema;
    const versionTable = versionedCacheName(target.stableTable, input.suffix);
    await sql.begin((tx) => claimCacheTarget(tx, target));

    const ctx = await sources(input.tenantId);
    let session: Awaited<ReturnType<typeof connectRemote>>;
    try {
      session = await connectRemote(target.config, ctx);
    } catch (err) {
      // connectRemote's errors say where and what; the caller is waiting, so no retry loop on them.
      if (err instanceof SecretRefError)
        throw ApplicationFailure.nonRetryable(`${err.field}: ${err.message}`, 'RemoteUnavailable');
      throw ApplicationFailure.nonRetryable(
        err instanceof Error ? err.message : String(err),
        'RemoteUnavailable',
      );
    }
    const remote = session.sql;
    const activity = Context.current();
    const counter = new RowCounter();
    // Beats on a timer, not per chunk: a COPY waiting for the remote table's lock is alive too.
    const beat = setInterval(() => activity.heartbeat({ rows: counter.rows }), 2_000);
    // A cancelled refresh stops at once, even while the remote COPY waits for a lock: the remote
    // connection is closed under it, and our transaction rolls back.
    const stop = () => void remote.end({ timeout: 0 });
    activity.cancellationSignal.addEventListener('abort', stop, { once: true });
    let remoteFailed: unknown;
    try {
      // The copy may outlast the catalog reads' statement timeout; its wait for a lock may not.
      await remote`select set_config('statement_timeout', '0', false), set_config('lock_timeout', ${remoteLockTimeout}, false)`;
      await sql.begin(async (tx) => {
        await ensureSchema(tx, cacheSchema);
        const version = qualified(cacheSchema, versionTable);
        await tx.unsafe(`DROP TABLE IF EXISTS ${version}`);
        const defs = target.columns.map((c) => `${quoteIdent(c.name)} ${cacheColumnType(c.type)}`);
        await tx.unsafe(`CREATE TABLE ${version} (${defs.join(', ')})`);
        if (target.columns.length === 0) return;
        const list = target.columns.map((c) => quoteIdent(c.name)).join(', ');
        const source = await remote
          .unsafe(`COPY (SELECT ${list} FROM ${qualified(target.schemaName, target.tableName)}) TO STDOUT`)
          .readable()
          .catch((err: unknown) => {
            remoteFailed = err;
            throw err;
          });
        source.once('error', (err) => {
          remoteFailed = err;
        });
        const sink = await tx.unsafe(`COPY ${version} (${list}) FROM STDIN`).writable();
        await pipeline(source, counter, sink, { signal: activity.cancellationSignal });
        await tx.unsafe(`ANALYZE ${version}`);
      });
    } catch (err) {
      if (activity.cancellationSignal.aborted)
        throw activity.cancellationSignal.reason ?? new CancelledFailure('cancelled');
      throw copyFailure(target, err, remoteFailed !== undefined && remoteFailed === err);
    } finally {
      activity.cancellationSignal.removeEventListener('abort', stop);
      clearInterval(beat);
      await closeRemote(remote);
    }
    log.info('table copied', {
      from: `${target.schemaName}.${target.tableName}`,
      to: `${cacheSchema}.${versionTable}`,
      rows: counter.rows,
    });
    return { cacheSchema, stableTable: target.stableTable, versionTable, rows: counter.rows };
  };
}

/**
 * Transient failures are retried (a few times: the copy activity's attempts are bounded); a missing
 * table or column, a permission refused, a value our column cannot hold are the table's outcome.
 */
function copyFailure(target: CacheTarget, err: unknown, remoteSide: boolean): unknown {
  if (err instanceof postgres.PostgresError) {
    const message = remoteSide
      ? describeRemoteError(target.config, err)
      : `cache table of ${target.schemaName}.${target.tableName}: ${err.message} (SQLSTATE ${err.code})`;
    if (transientSqlState.test(err.code)) return ApplicationFailure.retryable(message, 'CopyInterrupted');
    return ApplicationFailure.nonRetryable(
      message,
      remoteSide && err.code === '42P01' ? 'RemoteTableMissing' : 'CopyFailed',
    );
  }
  if (remoteSide)
    return ApplicationFailure.retryable(describeRemoteError(target.config, err), 'CopyInterrupted');
  return err;
}
