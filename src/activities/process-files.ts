import { ApplicationFailure, Context, log } from '@temporalio/activity';
import { claimBatch, markFailed } from '../ledger/processed-files.js';
import { createBatchLoader } from '../load/index.js';
import { SourceConfigError, SourceFileMissingError } from '../sources/index.js';
import type { ActivityDeps } from './deps.js';
import { loadIngestionContext } from './ingestion-context.js';

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

/**
 * Takes a batch of queued files (many small ones, or one large one) and loads each in its own
 * transaction. Data problems fail the file alone, with its error recorded; infrastructure problems
 * (Postgres or the store unreachable) propagate so that Temporal retries the activity, which then
 * resumes with the files this lane still holds.
 */
export function makeProcessFiles({ sql, stores }: ActivityDeps) {
  return async function processFiles(input: ProcessFilesInput): Promise<ProcessFilesResult> {
    const ctx = await loadIngestionContext(sql, input.ingestionId, input.table);
    const store = await stores(ctx.connection).catch((err: unknown) => {
      if (err instanceof SourceConfigError)
        throw ApplicationFailure.nonRetryable(err.message, 'SourceConfigError');
      throw err;
    });
    const files = await claimBatch(sql, input);
    const result: ProcessFilesResult = { claimed: files.length, succeeded: 0, failed: 0, records: 0 };
    if (files.length === 0) return result;
    // Large files take a while: heartbeat on a timer so the server sees the worker alive, and a dead
    // worker is noticed within the heartbeat timeout rather than the activity's whole timeout.
    const beat = setInterval(() => Context.current().heartbeat(result), 5_000);
    let lastBeat = Date.now();
    const loader = await createBatchLoader(sql, {
      ingestionId: ctx.ingestionId,
      target: ctx.destination,
      format: ctx.source.format,
      csv: ctx.csv,
      schemaMode: ctx.source.schema_mode,
      declaredColumns: ctx.source.columns,
    });
    try {
      for (const file of files) {
        const started = Date.now();
        const key = keyOf(store.uri(ctx.source.bucket, ''), file.filePath);
        let failure: { type: string; message: string } | undefined;
        try {
          const opened = await store.open(ctx.source.bucket, key);
          const outcome = await loader.load({
            fileId: file.id,
            sourceUri: file.filePath,
            key,
            runId: input.runId,
            body: opened.body,
            etag: opened.etag,
            size: opened.size,
            startedAt: started,
          });
          if (outcome.kind === 'failed') failure = outcome;
          else {
            result.succeeded++;
            if (outcome.kind === 'loaded') result.records += outcome.records;
          }
        } catch (err) {
          if (err instanceof SourceConfigError)
            throw ApplicationFailure.nonRetryable(err.message, 'SourceConfigError');
          if (!(err instanceof SourceFileMissingError)) throw err;
          failure = { type: err.name, message: err.message };
        }
        if (failure) {
          result.failed++;
          log.warn('file failed', { file: file.filePath, errorType: failure.type, error: failure.message });
          await markFailed(sql, {
            fileId: file.id,
            runId: input.runId,
            ...failure,
            durationMs: Date.now() - started,
          });
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

/** The store key of a ledger path (the path is the store's URI of the key). */
function keyOf(prefix: string, filePath: string): string {
  return filePath.startsWith(prefix) ? filePath.slice(prefix.length) : filePath;
}
