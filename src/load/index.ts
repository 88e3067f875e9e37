import { Readable } from 'node:stream';
import postgres from 'postgres';
import type { CsvOptions, DeclaredColumn, FileFormat, SchemaMode } from '../domain/schemas.js';
import { type FileSuccess, successStatement } from '../ledger/processed-files.js';
import { destinationColumns } from './columns.js';
import { FileDataError, LineDataError, type LoadTarget, NotCompleted } from './common.js';
import { ConvertError } from './duckdb-convert.js';
import { loadInTransaction } from './load-file.js';
import { schemaVersionFor } from './schema-history.js';
import { loadSmallJsonLines } from './small-file.js';
import { smallFileBytes } from './stage.js';

/**
 * The loader's one entry point. A batch loader loads the files of one ingestion (or one swap
 * shadow) one at a time: each file's rows, its schema version and its SUCCESS in one commit, so a
 * file is in its table once whatever retries happen. It chooses the path itself: a small JSON-lines
 * file whose fields the table has goes in one statement; anything else through the staged path.
 */
export interface BatchTarget {
  ingestionId: string;
  target: LoadTarget;
  format: FileFormat;
  csv: CsvOptions;
  schemaMode: SchemaMode;
  declaredColumns?: DeclaredColumn[];
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
  | { kind: 'loaded'; records: number }
  /** Another attempt committed this version of the file first: nothing changed. */
  | { kind: 'already-loaded' }
  /** The file's content is wrong (permanent for this version): recorded as the file's failure. */
  | { kind: 'failed'; type: string; message: string };

export interface BatchLoader {
  load(file: FileToLoad): Promise<LoadOutcome>;
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

  const general = async (file: FileToLoad, body: Readable): Promise<LoadOutcome> => {
    const records = await sql
      .begin(async (tx) => {
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
          ddl: sql,
          complete: async ({ columns: loadedWith, bytesRead, recordsSql }, q) => {
            const schemaVersion = await schemaVersionFor(
              q,
              batch.ingestionId,
              loadedWith,
              file.sourceUri,
              file.runId,
            );
            const success: FileSuccess = {
              fileId: file.fileId,
              runId: file.runId,
              etag: file.etag,
              schemaVersion,
              bytesRead,
              durationMs: Date.now() - file.startedAt,
            };
            return { statement: successStatement(q, success, recordsSql) };
          },
        });
        columns = loaded.columns;
        return loaded.records;
      })
      .catch((err: unknown) => {
        if (err instanceof NotCompleted) return undefined;
        throw err;
      });
    return records === undefined ? { kind: 'already-loaded' } : { kind: 'loaded', records };
  };

  return {
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
          });
          if (fast.kind === 'loaded') return { kind: 'loaded', records: fast.records };
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
function smallFileCandidate(batch: BatchTarget, file: FileToLoad): boolean {
  return (
    batch.format === 'jsonl' &&
    batch.schemaMode === 'add_columns' &&
    !file.key.endsWith('.gz') &&
    file.size > 0 &&
    file.size <= smallFileBytes
  );
}

async function readAll(body: Readable): Promise<Buffer> {
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
