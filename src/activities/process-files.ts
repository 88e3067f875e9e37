import { Readable } from 'node:stream';
import { ApplicationFailure, CancelledFailure, Context, log } from '@temporalio/activity';
import postgres from 'postgres';
import { type ClaimedFile, claimBatch, countAttempt, markFailed } from '../ledger/processed-files.js';
import { createBatchLoader, type LoadOutcome, readAll, smallFileBytes } from '../load/index.js';
import { rowErrorPolicyOf } from '../load/row-errors.js';
import { SourceConfigError, SourceFileError, sourceConfigAdvice } from '../sources/index.js';
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
  /** Files loaded by one COPY straight into the table's columns (the rest went through staging). */
  loadedDirect: number;
}

/** A small file read whole, with the version read. */
interface Read {
  content: Buffer;
  etag: string | null;
  size: number;
  startedAt: number;
}

/** A small file's read: its content, or the error reading it met (the file's own to settle). */
type ReadOutcome = Read | { error: unknown; startedAt: number };

/** The bytes a lane holds for one transaction of small files. */
const smallFilesTransactionBytes = 8 * smallFileBytes;
/** Small files a lane reads at once for one transaction. */
const smallFileReadsInFlight = 4;

/** A file's failure, as the ledger records it. */
interface Failure {
  type: string;
  message: string;
  /** The file's own (this version fails the same way again) — or unknown, retried by later runs. */
  permanent: boolean;
}

/**
 * Takes a batch of queued files (many small ones, or one large one) and loads them: small files
 * several per transaction (LOAD_SMALL_FILES_PER_TRANSACTION), each with its own rows and SUCCESS in
 * that commit; any other file, and every file of a transaction that did not commit, in a
 * transaction of its own. How a failure of a file loaded alone is handled depends on whose it is:
 * - the file's (bad data, a denied or archived object, a lock it could not get in time): the file
 *   is FAILED with its error and the batch goes on;
 * - the run's (the bucket is gone, the credentials are refused): the activity fails without retry;
 * - the infrastructure's (Postgres or the store unreachable): the activity fails and Temporal retries
 *   it with backoff for as long as the outage lasts — the lane resumes with the files it holds;
 * - unknown: retried like an outage, but a file that fails this way FILE_MAX_ATTEMPTS times fails.
 * A cancelled activity (the run cancelled, the worker shutting down) stops between files, and a
 * file whose load it interrupts rolls back.
 */
export function makeProcessFiles({
  sql,
  stores,
  fileMaxAttempts,
  smallFilesPerTransaction,
  directCopy,
}: ActivityDeps) {
  return async function processFiles(input: ProcessFilesInput): Promise<ProcessFilesResult> {
    const ctx = await loadIngestionContext(sql, input.ingestionId, input.table);
    const store = await stores(ctx.connection).catch((err: unknown) => {
      if (err instanceof SourceConfigError)
        throw ApplicationFailure.nonRetryable(
          sourceConfigAdvice(err, ctx.connection.id),
          'SourceConfigError',
        );
      throw err;
    });
    const files = await claimBatch(sql, input);
    const result: ProcessFilesResult = {
      claimed: files.length,
      succeeded: 0,
      failed: 0,
      records: 0,
      loadedDirect: 0,
    };
    if (files.length === 0) return result;

    const activity = Context.current();
    // Liveness follows progress: bytes read or files finished. A load stalled without either (a
    // statement waiting on something the lock timeout does not cover) stops heartbeating, so
    // Temporal times the attempt out and retries it instead of waiting for hours.
    const progress = { bytes: 0, at: Date.now(), reported: 0 };
    const stallMs = 120_000;
    const beat = setInterval(() => {
      if (Date.now() - progress.at < stallMs) activity.heartbeat({ ...result, bytes: progress.bytes });
    }, 2_000);
    const loader = await createBatchLoader(sql, {
      ingestionId: ctx.ingestionId,
      target: ctx.destination,
      format: ctx.source.format,
      csv: ctx.csv,
      schemaMode: ctx.source.schema_mode,
      declaredColumns: ctx.source.columns,
      rowErrors: rowErrorPolicyOf(ctx.source),
      directCopy,
      signal: activity.cancellationSignal,
      onProgress: (bytes) => {
        progress.bytes += bytes;
        progress.at = Date.now();
      },
    });
    const prefix = store.uri(ctx.source.bucket, '');
    /**
     * The files from `start` on that load together: consecutive small ones, up to the files and
     * bytes of one transaction (the bytes are held in memory until it commits).
     */
    const smallGroup = (start: number): ClaimedFile[] => {
      const group: ClaimedFile[] = [];
      let bytes = 0;
      for (const file of files.slice(start, start + smallFilesPerTransaction)) {
        const small = loader.mayLoadTogether({ key: keyOf(prefix, file.filePath), size: file.fileSizeBytes });
        if (!small || bytes + file.fileSizeBytes > smallFilesTransactionBytes) break;
        group.push(file);
        bytes += file.fileSizeBytes;
      }
      return group;
    };

    /** Records what became of a file; a failure is the file's own, recorded with its error. */
    const settle = async (file: ClaimedFile, started: number, outcome: LoadOutcome | Failure) => {
      progress.at = Date.now();
      if (!('kind' in outcome) || outcome.kind === 'failed') {
        const failure: Failure = 'kind' in outcome ? { ...outcome, permanent: true } : outcome;
        result.failed++;
        log.warn('file failed', { file: file.filePath, errorType: failure.type, error: failure.message });
        await markFailed(sql, {
          fileId: file.id,
          runId: input.runId,
          type: failure.type,
          message: failure.message,
          permanent: failure.permanent,
          durationMs: Date.now() - started,
        });
        return;
      }
      result.succeeded++;
      if (outcome.kind !== 'loaded') return;
      result.records += outcome.records;
      if (outcome.direct) result.loadedDirect++;
      // A large file that could not go straight into its columns: slower, and worth knowing why.
      if (outcome.stagedBecause)
        log.info('file loaded through staging', { file: file.filePath, reason: outcome.stagedBecause });
    };

    /** One file in its own transaction: opened from the store, or given whole (read for a batch). */
    const loadAlone = async (file: ClaimedFile, read?: Read) => {
      const started = Date.now();
      const key = keyOf(prefix, file.filePath);
      let outcome: LoadOutcome | Failure;
      try {
        const opened = read
          ? { body: Readable.from([read.content]), etag: read.etag, size: read.size }
          : await store.open(ctx.source.bucket, key);
        const body = opened.body;
        // A stream that errors while nobody reads it must not end the process.
        body.on('error', noteStreamError);
        const abort = () => body.destroy(new Error('load cancelled'));
        activity.cancellationSignal.addEventListener('abort', abort, { once: true });
        try {
          outcome = await loader.load({
            fileId: file.id,
            sourceUri: file.filePath,
            key,
            runId: input.runId,
            body,
            etag: opened.etag,
            size: opened.size,
            startedAt: started,
          });
        } finally {
          activity.cancellationSignal.removeEventListener('abort', abort);
          body.destroy();
        }
      } catch (err) {
        if (activity.cancellationSignal.aborted) throw cancelled(activity);
        outcome = await classify(err, file.id, ctx.connection.id);
      }
      await settle(file, started, outcome);
    };

    /**
     * Small files, read whole and loaded in one transaction. A file that could not be read has its
     * error handled (in its turn) as if it had been loaded alone; one that the transaction did not
     * load is loaded alone afterwards.
     */
    const loadTogether = async (claimed: ClaimedFile[]) => {
      let group = claimed;
      // A few reads at once: a lane waiting on the store for one file after another leaves the
      // machine's cores idle between requests. Each read's error is its file's, kept in its place.
      let reads: ReadOutcome[] = new Array(group.length);
      let next = 0;
      const reader = async () => {
        while (next < group.length && !activity.cancellationSignal.aborted) {
          const i = next++;
          const startedAt = Date.now();
          reads[i] = await readWhole(group[i]!).catch((error: unknown) => ({ error, startedAt }));
          progress.at = Date.now();
        }
      };
      await Promise.all(Array.from({ length: Math.min(smallFileReadsInFlight, group.length) }, reader));
      if (activity.cancellationSignal.aborted) throw cancelled(activity);
      // A table without columns yet (a new one): nothing can load together until a file creates
      // it, so the first file read loads alone first and the files after it load together, instead
      // of every file of the group loading alone.
      if (!loader.knowsColumns()) {
        const first = reads.findIndex((read) => 'content' in read);
        // Worth it when at least two files come after it.
        if (first >= 0 && group.length - (first + 1) >= 2) {
          for (let i = 0; i <= first; i++) await loadRead(group[i]!, reads[i]!);
          group = group.slice(first + 1);
          reads = reads.slice(first + 1);
        }
      }
      const whole = group.flatMap((file, i) => {
        const read = reads[i]!;
        return 'content' in read
          ? [
              {
                fileId: file.id,
                sourceUri: file.filePath,
                key: keyOf(prefix, file.filePath),
                runId: input.runId,
                content: read.content,
                etag: read.etag,
                size: read.size,
                startedAt: read.startedAt,
              },
            ]
          : [];
      });
      const outcomes = await loader.loadTogether(whole).catch((err: unknown) => {
        throw activity.cancellationSignal.aborted ? cancelled(activity) : err;
      });
      const byId = new Map(whole.map((w, i) => [w.fileId, outcomes[i]]));
      for (const [i, file] of group.entries()) {
        const read = reads[i]!;
        const outcome = byId.get(file.id);
        if (outcome) await settle(file, read.startedAt, outcome);
        else if (activity.cancellationSignal.aborted) throw cancelled(activity);
        else await loadRead(file, read);
      }
    };

    /** A file of a group that was not loaded with the others: its read's error, or a load of its own. */
    const loadRead = async (file: ClaimedFile, read: ReadOutcome) => {
      if ('error' in read)
        await settle(file, read.startedAt, await classify(read.error, file.id, ctx.connection.id));
      else await loadAlone(file, read);
    };

    const readWhole = async (file: ClaimedFile): Promise<Read> => {
      const startedAt = Date.now();
      const opened = await store.open(ctx.source.bucket, keyOf(prefix, file.filePath));
      const content = await readAll(opened.body);
      progress.bytes += content.length;
      return { content, etag: opened.etag, size: opened.size, startedAt };
    };

    try {
      for (let i = 0; i < files.length; ) {
        // Cancelled (the run, or the worker going down): the files not started stay claimed by
        // this lane and go back to the queue when the run ends or the lane is retried.
        if (activity.cancellationSignal.aborted) throw cancelled(activity);
        const group = smallGroup(i);
        i += Math.max(1, group.length);
        if (group.length > 1) await loadTogether(group);
        else await loadAlone(files[i - 1]!);
      }
    } finally {
      clearInterval(beat);
    }
    activity.heartbeat(result);
    return result;
  };

  /** Whose failure this is: a Failure to record, or (thrown) the run's, the infrastructure's, or a retry. */
  async function classify(err: unknown, fileId: number, connectionId: string): Promise<Failure> {
    if (err instanceof SourceConfigError)
      throw ApplicationFailure.nonRetryable(sourceConfigAdvice(err, connectionId), 'SourceConfigError');
    if (err instanceof SourceFileError) return { type: err.name, message: err.message, permanent: true };
    if (err instanceof postgres.PostgresError && err.code === '55P03') {
      return {
        type: 'LockTimeout',
        message:
          'the destination table stayed locked past the lock timeout (LOAD_LOCK_TIMEOUT_SECONDS) by another session; the file is retried by a later run',
        permanent: false,
      };
    }
    if (isInfrastructure(err)) throw err;
    const attempts = await countAttempt(sql, fileId);
    if (attempts < fileMaxAttempts) throw err;
    const e = err instanceof Error ? err : new Error(String(err));
    return {
      type: e.name,
      message: `${e.message} (failed ${attempts} times in this run; a later run tries again)`,
      permanent: false,
    };
  }
}

/** The cancellation itself (not the error the interrupted load ended with), so Temporal records a cancel. */
function cancelled(activity: Context): unknown {
  return activity.cancellationSignal.reason ?? new CancelledFailure('cancelled');
}

function noteStreamError(err: Error): void {
  log.debug('file stream error (reported by its reader)', { error: err.message });
}

/** Postgres or a store that cannot be reached at all: wait it out, never count it against a file. */
function isInfrastructure(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (e instanceof postgres.PostgresError) {
      const cls = e.code.slice(0, 2);
      if (cls === '08' || cls === '53' || cls === '57' || e.code === '40001' || e.code === '40P01')
        return true;
    }
    const code = (e as NodeJS.ErrnoException).code;
    if (
      code === 'ECONNREFUSED' ||
      code === 'ENOTFOUND' ||
      code === 'EAI_AGAIN' ||
      code === 'EHOSTUNREACH' ||
      code === 'ENETUNREACH' ||
      code === 'CONNECTION_CLOSED' ||
      code === 'CONNECTION_ENDED' ||
      code === 'CONNECTION_DESTROYED' ||
      code === 'CONNECT_TIMEOUT'
    )
      return true;
  }
  return false;
}

/** The store key of a ledger path (the path is the store's URI of the key). */
function keyOf(prefix: string, filePath: string): string {
  return filePath.startsWith(prefix) ? filePath.slice(prefix.length) : filePath;
}
