import { Readable } from 'node:stream';
import postgres from 'postgres';
import type { CsvOptions, DeclaredColumn, FileFormat, SchemaMode } from '../domain/schemas.js';
import { type FileSuccess, lockFileRow, successStatement } from '../ledger/processed-files.js';
import { destinationColumns } from './columns.js';
import { FileDataError, LineDataError, type LoadTarget, NotCompleted } from './common.js';
import { ConvertError } from './duckdb-convert.js';
import { loadInTransaction } from './load-file.js';
import { keepRejected, type RowErrorPolicy } from './row-errors.js';
import { findSchemaVersion, knownSchemaVersion, schemaVersionFor } from './schema-history.js';
import { copySmallFiles } from './small-batch.js';
import { loadSmallJsonLines, smallFileUnfit } from './small-file.js';
import { smallFileBytes } from './stage.js';

/**
 * The loader's one entry point. A batch loader loads the files of one ingestion (or one swap
 * shadow): each file's rows, its schema version and its SUCCESS in one commit, so a file is in its
 * table once whatever retries happen. It chooses the path itself: small JSON-lines files whose
 * fields the table has, read whole by the caller, go several in one transaction by one COPY
 * (loadTogether, small-batch.ts); such a file alone goes in one statement (small-file.ts);
 * anything else through the staged path, a file at a time.
 */
export interface BatchTarget {
  ingestionId: string;
  target: LoadTarget;
  format: FileFormat;
  csv: CsvOptions;
  schemaMode: SchemaMode;
  declaredColumns?: DeclaredColumn[];
  /** on_error and its limits (default: a row that cannot load fails its file). */
  rowErrors?: RowErrorPolicy;
  /** Large JSON-lines files by one COPY into their columns when their keys allow (LOAD_DIRECT_COPY). */
  directCopy?: boolean;
  /** Bytes read from a file so far (for heartbeats that follow progress). */
  onProgress?: (bytes: number) => void;
  /** Aborted when the load must stop (the run cancelled, the worker shutting down). */
  signal?: AbortSignal;
}

export interface FileToLoad {
  fileId: number;
  /** Full URI of the file: the `_source_file` of every row it contributes. */
  sourceUri: string;
  /** The key in the store (decides gzip by its name). */
  key: string;
  runId: string;
  body: Readable;
  /** The version being read, recorded with its rows. */
  etag: string | null;
  size: number;
  startedAt: number;
}

export type LoadOutcome =
  | {
      kind: 'loaded';
      records: number;
      rowsRejected: number;
      /** Loaded by one COPY straight into the table's columns (LOAD_DIRECT_COPY). */
      direct?: boolean;
      /** Why a file the direct path tried was loaded through the staging table instead. */
      stagedBecause?: string;
    }
  /** Another attempt committed this version of the file first: nothing changed. */
  | { kind: 'already-loaded' }
  /** The file's content is wrong (permanent for this version): recorded as the file's failure. */
  | { kind: 'failed'; type: string; message: string };

/** A file read whole (small enough to hold in memory), for loadTogether. */
export type WholeFile = Omit<FileToLoad, 'body'> & { content: Buffer };

export interface BatchLoader {
  load(file: FileToLoad): Promise<LoadOutcome>;
  /** Whether a file of this key and size may load together with others: worth reading whole first. */
  mayLoadTogether(file: { key: string; size: number }): boolean;
  /** Whether the destination's columns are known (the table exists): files can load together. */
  knowsColumns(): boolean;
  /**
   * Loads the files in one transaction, each with its own SUCCESS in it, and answers each file's
   * outcome — or, for every file, undefined: it was not loaded, and the caller loads it alone
   * (with `load`). That is the answer for a file the batch's COPY cannot take as it is (a new
   * field, a line that is not a plain JSON object: see json-copy-text.ts), and for all of them
   * when the transaction fails (a value Postgres rejects, rows a trigger swallowed, a lost
   * connection): it rolls back whole, so one bad file never fails its neighbours, and its own load
   * alone gives its precise error. A file's rows and its SUCCESS commit together; a file another
   * attempt committed first (no longer PROCESSING) changes nothing.
   */
  loadTogether(files: WholeFile[]): Promise<(LoadOutcome | undefined)[]>;
}

/**
 * `sql` is the pool the loads run on. It also creates new destination tables in a short transaction
 * of its own while the file's transaction holds another connection: pools that run activities are
 * sized above the activity concurrency (workerPoolSize).
 */
export async function createBatchLoader(sql: postgres.Sql, batch: BatchTarget): Promise<BatchLoader> {
  // The destination's columns, read once per batch and kept current by each file loaded the general
  // way; small files whose fields they cover take the one-statement path.
  let columns = await destinationColumns(sql, batch.target);

  /** Arms `signal` to cancel whatever `tx`'s connection runs; returns the disarm function. */
  const cancelOnAbort = async (tx: postgres.TransactionSql, signal: AbortSignal) => {
    const [row] = await tx<{ pid: number }[]>`select pg_backend_pid() as pid`;
    const onAbort = () => {
      // Asked from another connection of the pool. If that fails (the pool is closing), the wait
      // still ends by itself, bounded by the lock timeout: nothing to do about the failure here.
      sql`select pg_cancel_backend(${row!.pid})`.catch(() => undefined);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    return () => signal.removeEventListener('abort', onAbort);
  };

  const general = async (file: FileToLoad, body: Readable): Promise<LoadOutcome> => {
    const loaded = await sql
      .begin(async (tx) => {
        // Cancelled while a statement waits (on a lock, say): the statement is cancelled on the
        // server, so the transaction rolls back now instead of when the wait ends.
        const stop = batch.signal && (await cancelOnAbort(tx, batch.signal));
        try {
          return await loadAndComplete(tx);
        } finally {
          stop?.();
        }
      })
      .catch((err: unknown) => {
        if (err instanceof NotCompleted) return undefined;
        throw err;
      });
    return loaded === undefined ? { kind: 'already-loaded' } : { kind: 'loaded', ...loaded };

    async function loadAndComplete(
      tx: postgres.TransactionSql,
    ): Promise<{ records: number; rowsRejected: number; direct: boolean; stagedBecause?: string }> {
      const loaded = await loadInTransaction(tx, {
        target: batch.target,
        sourceUri: file.sourceUri,
        runId: file.runId,
        format: batch.format,
        csv: batch.csv,
        gzip: file.key.endsWith('.gz'),
        body,
        schemaMode: batch.schemaMode,
        declaredColumns: batch.declaredColumns,
        rowErrors: batch.rowErrors,
        directCopy: batch.directCopy,
        lockFile: (q) => lockFileRow(q, file.fileId),
        ddl: sql,
        onProgress: batch.onProgress,
        complete: async ({ columns: loadedWith, bytesRead, recordsSql, sourceNames, rowsRejected }, q) => {
          const schemaVersion = await schemaVersionFor(
            q,
            batch.ingestionId,
            loadedWith,
            file.sourceUri,
            file.runId,
            sourceNames,
          );
          const success: FileSuccess = {
            fileId: file.fileId,
            runId: file.runId,
            etag: file.etag,
            schemaVersion,
            bytesRead,
            durationMs: Date.now() - file.startedAt,
            rowsRejected,
          };
          return { lock: lockFileRow(q, file.fileId), statement: successStatement(q, success, recordsSql) };
        },
      });
      columns = loaded.columns;
      // After the success statement, which cleared the rows an earlier load of the file rejected.
      if (loaded.rowsRejected > 0)
        await keepRejected(tx, {
          ingestionId: batch.ingestionId,
          fileId: file.fileId,
          filePath: file.sourceUri,
          runId: file.runId,
        });
      return {
        records: loaded.records,
        rowsRejected: loaded.rowsRejected,
        direct: loaded.path === 'direct',
        stagedBecause: loaded.stagedBecause,
      };
    }
  };

  const loadTogether = async (files: WholeFile[]): Promise<(LoadOutcome | undefined)[]> => {
    const alone = files.map(() => undefined);
    // Columns no file of this process has loaded with yet (a new worker, another worker's new
    // column): their committed version, if any, lets the files take the one-statement path.
    if (columns && files.length > 1 && knownSchemaVersion(batch.ingestionId, columns) === undefined) {
      const found = await findSchemaVersion(sql, batch.ingestionId, columns).catch(() => undefined);
      // Not found (or not readable now): the first file loaded alone records the version.
      if (found === undefined) return alone;
    }
    const inputs = files.map((file, i) => ({
      i,
      fileId: file.fileId,
      candidate: smallFileCandidate(batch, file),
      input: {
        ingestionId: batch.ingestionId,
        fileId: file.fileId,
        target: batch.target,
        sourceUri: file.sourceUri,
        runId: file.runId,
        etag: file.etag,
        content: file.content,
        columns,
        startedAt: file.startedAt,
      },
    }));
    // In ledger order: two attempts at the same files (a retried lane and the one it replaced)
    // lock their rows in the same order, so they wait for each other and never deadlock.
    const together = inputs
      .filter((f) => f.candidate && smallFileUnfit(f.input) === undefined)
      .sort((a, b) => a.fileId - b.fileId);
    if (together.length < 2) return alone;
    const runId = together[0]!.input.runId;
    if (together.some(({ input }) => input.runId !== runId)) return alone;
    try {
      const outcomes = await sql.begin(async (tx) => {
        const stop = batch.signal && (await cancelOnAbort(tx, batch.signal));
        try {
          return await copySmallFiles(
            tx,
            batch.target,
            columns!,
            knownSchemaVersion(batch.ingestionId, columns!)!,
            together.map(({ input }) => input),
          );
        } finally {
          stop?.();
        }
      });
      const out = files.map((): LoadOutcome | undefined => undefined);
      together.forEach(({ i }, k) => {
        const outcome = outcomes[k]!;
        if (outcome.kind === 'loaded') out[i] = { ...outcome, rowsRejected: 0 };
        else if (outcome.kind === 'already-loaded') out[i] = outcome;
      });
      return out;
    } catch (err) {
      // Cancelled: the caller stops. Anything else — the file's or not — is for each file's own
      // load to meet, and to report or wait out as it does for a file loaded alone.
      if (batch.signal?.aborted) throw err;
      return alone;
    }
  };

  return {
    mayLoadTogether: (file) => smallFileCandidate(batch, file),
    knowsColumns: () => columns !== undefined,
    loadTogether,
    async load(file) {
      try {
        let body = file.body;
        if (smallFileCandidate(batch, file)) {
          const content = await readAll(file.body);
          const fast = await loadSmallJsonLines(sql, {
            ingestionId: batch.ingestionId,
            fileId: file.fileId,
            target: batch.target,
            sourceUri: file.sourceUri,
            runId: file.runId,
            etag: file.etag,
            content,
            columns,
            startedAt: file.startedAt,
            signal: batch.signal,
          });
          if (fast.kind === 'loaded') return { kind: 'loaded', records: fast.records, rowsRejected: 0 };
          if (fast.kind === 'already-loaded') return fast;
          body = Readable.from([content]);
        }
        return await general(file, body);
      } catch (err) {
        const failure = dataFailure(err);
        if (failure) return { kind: 'failed', ...failure };
        throw err;
      }
    },
  };
}

/** Small uncompressed JSON lines in add_columns mode: candidates for the one-statement load. */
function smallFileCandidate(batch: BatchTarget, file: { key: string; size: number }): boolean {
  return (
    batch.format === 'jsonl' &&
    batch.rowErrors?.mode !== 'skip_rows' &&
    batch.schemaMode === 'add_columns' &&
    !file.key.endsWith('.gz') &&
    file.size > 0 &&
    file.size <= smallFileBytes
  );
}

export async function readAll(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/**
 * SQLSTATE classes that describe the file's content, not the infrastructure: data exceptions (22),
 * integrity violations (23), a column the data names that cannot exist (42), program limits such as
 * too many columns (54).
 */
const dataErrorClasses = new Set(['22', '23', '42', '54']);

/** A data error's type and message (naming the file line where known), or undefined for any other error. */
function dataFailure(err: unknown): { type: string; message: string } | undefined {
  if (err instanceof FileDataError || err instanceof ConvertError) {
    return { type: err.name, message: err.message };
  }
  if (err instanceof LineDataError) {
    return { type: `PostgresError:${err.pg.code}`, message: `line ${err.line}: ${withContext(err.pg)}` };
  }
  if (err instanceof postgres.PostgresError && dataErrorClasses.has(err.code.slice(0, 2))) {
    const copyLine = /COPY \S+, line (\d+)/.exec(err.where ?? '');
    return {
      type: `PostgresError:${err.code}`,
      message: `${copyLine ? `line ${copyLine[1]}: ` : ''}${withContext(err)}`,
    };
  }
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code === 'string' && code.startsWith('Z_')) {
    return { type: 'DecompressionError', message: `gzip: ${(err as Error).message}` };
  }
  return undefined;
}

function withContext(err: postgres.PostgresError): string {
  return `${err.message}${err.where ? ` (${err.where.split('\n')[0]})` : ''}`;
}

export { FileDataError } from './common.js';
export { smallFileBytes } from './stage.js';
