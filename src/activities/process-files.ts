import { Readable } from 'node:stream';
import { ApplicationFailure, Context, log } from '@temporalio/activity';
import postgres from 'postgres';
import { destinationColumns } from '../load/columns.js';
import { FileDataError, NotCompleted } from '../load/common.js';
import { ConvertError } from '../load/duckdb-convert.js';
import { loadFile } from '../load/load-file.js';
import { schemaVersionFor } from '../load/schema-history.js';
import { loadSmallJsonLines } from '../load/small-file.js';
import { smallFileBytes } from '../load/stage.js';
import { SourceConfigError, SourceFileMissingError } from '../storage/index.js';
import type { ActivityDeps } from './deps.js';
import { type IngestionContext, loadIngestionContext } from './ingestion-context.js';

export interface ProcessFilesInput {
  runId: string;
  ingestionId: string;
  /** The lane claims files under this name, so its retry finds the files it held. */
  lane: string;
  maxFiles: number;
  maxBytes: number;
  /** Load into this table instead of the ingestion's (a swap refresh's shadow table). */
  table?: string;
}

export interface ProcessFilesResult {
  /** Files taken in this call; 0 means the run's queue is empty. */
  claimed: number;
  succeeded: number;
  failed: number;
  records: number;
}

interface ClaimedFile {
  id: number;
  filePath: string;
  fileSizeBytes: number;
}

/**
 * Takes a batch of queued files (many small ones, or one large one) and loads each in its own
 * transaction. Data problems fail the file alone, with its error recorded; infrastructure problems
 * (Postgres or the store unreachable) propagate so that Temporal retries the activity, which then
 * resumes with the files this lane still holds.
 */
export function makeProcessFiles({ sql, stores }: ActivityDeps) {
  return async function processFiles(input: ProcessFilesInput): Promise<ProcessFilesResult> {
    const ctx = await loadIngestionContext(sql, stores, input.ingestionId, input.table);
    const files = await claimBatch(sql, input);
    const result: ProcessFilesResult = { claimed: files.length, succeeded: 0, failed: 0, records: 0 };
    // Large files take a while: heartbeat on a timer so the server sees the worker alive, and a dead
    // worker is noticed within the heartbeat timeout rather than the activity's whole timeout.
    const beat = setInterval(() => Context.current().heartbeat(result), 5_000);
    let lastBeat = Date.now();
    // The destination's columns, read once per batch and kept current by each file loaded the
    // general way; small files whose fields they cover take the one-statement path.
    const known: KnownColumns = {
      columns: files.length > 0 ? await destinationColumns(sql, ctx.destination) : undefined,
    };
    try {
      for (const file of files) {
        const outcome = await processOne(sql, ctx, input, file, known);
        if (outcome.ok) {
          result.succeeded++;
          result.records += outcome.records;
        } else {
          result.failed++;
        }
        // Progress after each file, at most once a second (a heartbeat is not free).
        if (Date.now() - lastBeat >= 1_000) {
          lastBeat = Date.now();
          Context.current().heartbeat(result);
        }
      }
    } finally {
      clearInterval(beat);
    }
    return result;
  };
}

async function claimBatch(sql: postgres.Sql, input: ProcessFilesInput): Promise<ClaimedFile[]> {
  return sql.begin(async (tx) => {
    // Files this lane already held (its previous attempt died) come first.
    const candidates = await tx<ClaimedFile[]>`
      select id::float8 as id, file_path as "filePath", file_size_bytes::float8 as "fileSizeBytes"
      from autoloader.processed_files
      where ingestion_id = ${input.ingestionId} and run_id = ${input.runId}
        and (status = 'DISCOVERED' or (status = 'PROCESSING' and claimed_by = ${input.lane}))
      order by (status = 'PROCESSING') desc, id
      limit ${input.maxFiles}
      for update skip locked`;
    const chosen: ClaimedFile[] = [];
    let bytes = 0;
    for (const c of candidates) {
      if (chosen.length > 0 && bytes + c.fileSizeBytes > input.maxBytes) break;
      chosen.push(c);
      bytes += c.fileSizeBytes;
    }
    if (chosen.length > 0) {
      await tx`
        update autoloader.processed_files
        set status = 'PROCESSING', claimed_by = ${input.lane}, processing_started_at = now(), updated_at = now()
        where id = any(${chosen.map((c) => c.id)}::bigint[])`;
    }
    return chosen;
  });
}

type Outcome = { ok: true; records: number } | { ok: false };

interface KnownColumns {
  columns: Map<string, string> | undefined;
}

/** Small uncompressed JSON lines in add_columns mode: candidates for the one-statement load. */
function smallFileCandidate(ctx: IngestionContext, key: string, size: number): boolean {
  return (
    ctx.source.format === 'jsonl' &&
    ctx.source.schema_mode === 'add_columns' &&
    !key.endsWith('.gz') &&
    size > 0 &&
    size <= smallFileBytes
  );
}

async function readAll(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

async function processOne(
  sql: postgres.Sql,
  ctx: IngestionContext,
  input: ProcessFilesInput,
  file: ClaimedFile,
  known: KnownColumns,
): Promise<Outcome> {
  const started = Date.now();
  const key = keyOf(ctx, file.filePath);
  try {
    const opened = await ctx.store.open(ctx.source.bucket, key);
    let body: Readable = opened.body;
    if (smallFileCandidate(ctx, key, opened.size)) {
      const content = await readAll(opened.body);
      const fast = await loadSmallJsonLines(sql, {
        ingestionId: ctx.ingestionId,
        fileId: file.id,
        target: ctx.destination,
        sourceUri: file.filePath,
        runId: input.runId,
        etag: opened.etag,
        content,
        columns: known.columns,
        startedAt: started,
      });
      if (fast.kind === 'loaded') return { ok: true, records: fast.records };
      if (fast.kind === 'already-loaded') return { ok: true, records: 0 };
      body = Readable.from([content]);
    }
    const records = await sql
      .begin(async (tx) => {
        const loaded = await loadFile(tx, {
          target: ctx.destination,
          sourceUri: file.filePath,
          runId: input.runId,
          format: ctx.source.format,
          csv: ctx.csv,
          gzip: key.endsWith('.gz'),
          body,
          schemaMode: ctx.source.schema_mode,
          declaredColumns: ctx.source.columns,
          ddl: sql,
          // The file's SUCCESS goes out with its rows. It is conditional: if another attempt at the
          // same file (a zombie and its retry) committed this version first, nothing matches, and
          // this transaction rolls back its rows. The row lock makes the two attempts take turns.
          complete: async ({ columns, bytesRead, recordsSql }, q) => {
            const schemaVersion = await schemaVersionFor(
              q,
              ctx.ingestionId,
              columns,
              file.filePath,
              input.runId,
            );
            return {
              statement: q.unsafe(
                `update autoloader.processed_files
               set status = 'SUCCESS', claimed_by = null, run_id = $2, file_etag = $3, schema_version = $4,
                   processed_at = clock_timestamp(), records_ingested = ${recordsSql}, bytes_read = $5,
                   processing_duration_ms = $6, error_message = null, error_type = null, updated_at = now()
               where id = $1 and not (status = 'SUCCESS' and file_etag is not distinct from $3)`,
                [file.id, input.runId, opened.etag, schemaVersion, bytesRead, Date.now() - started],
                { prepare: true },
              ),
            };
          },
        });
        known.columns = loaded.columns;
        return loaded.records;
      })
      .catch((err: unknown) => {
        if (err instanceof NotCompleted) return 0;
        throw err;
      });
    return { ok: true, records };
  } catch (err) {
    if (err instanceof SourceConfigError)
      throw ApplicationFailure.nonRetryable(err.message, 'SourceConfigError');
    const failure = fileFailure(err);
    if (!failure) throw err;
    log.warn('file failed', { file: file.filePath, errorType: failure.type, error: failure.message });
    await sql`
      update autoloader.processed_files
      set status = 'FAILED', claimed_by = null, run_id = ${input.runId}, error_message = ${failure.message},
          error_type = ${failure.type}, retry_count = retry_count + 1, processed_at = clock_timestamp(),
          processing_duration_ms = ${Date.now() - started}, updated_at = now()
      where id = ${file.id} and status <> 'SUCCESS'`;
    return { ok: false };
  }
}

function keyOf(ctx: IngestionContext, filePath: string): string {
  const prefix = ctx.store.uri(ctx.source.bucket, '');
  return filePath.startsWith(prefix) ? filePath.slice(prefix.length) : filePath;
}

/**
 * SQLSTATE classes that describe the file's content, not the infrastructure: data exceptions (22),
 * integrity violations (23), a column the data names that cannot exist (42), program limits such as
 * too many columns (54).
 */
const dataErrorClasses = new Set(['22', '23', '42', '54']);

/** The line of the file a data error is on: from COPY's context, or found by the small-file path. */
function fileLineOf(err: postgres.PostgresError): number | undefined {
  const found = (err as { fileLine?: unknown }).fileLine;
  if (typeof found === 'number') return found;
  const copyLine = /COPY \S+, line (\d+)/.exec(err.where ?? '');
  return copyLine ? Number(copyLine[1]) : undefined;
}

function fileFailure(err: unknown): { type: string; message: string } | undefined {
  if (err instanceof FileDataError || err instanceof ConvertError || err instanceof SourceFileMissingError) {
    return { type: err.name, message: err.message };
  }
  if (err instanceof postgres.PostgresError && dataErrorClasses.has(err.code.slice(0, 2))) {
    const where = err.where ? ` (${err.where.split('\n')[0]})` : '';
    const line = fileLineOf(err);
    return {
      type: `PostgresError:${err.code}`,
      message: `${line === undefined ? '' : `line ${line}: `}${err.message}${where}`,
    };
  }
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code === 'string' && code.startsWith('Z_')) {
    return { type: 'DecompressionError', message: `gzip: ${(err as Error).message}` };
  }
  return undefined;
}
