import type { RunStatus } from '../db/schema/index.js';
import { releaseRunClaims, runFileFigures } from '../ledger/processed-files.js';
import type { ActivityDeps } from './deps.js';

export interface FinishRunInput {
  runId: string;
  ingestionId: string;
  /** Set when the run could not complete (discovery failed, cancelled); otherwise derived from the files. */
  outcome?: { status: 'FAILED' | 'CANCELLED'; error: string };
}

export interface RunSummary {
  runId: string;
  status: RunStatus;
  filesDiscovered: number;
  filesProcessed: number;
  filesFailed: number;
  filesSkipped: number;
  recordsWritten: number;
  bytesRead: number;
  durationMs: number;
  error: string | null;
}

/**
 * Freezes the run's metrics from `processed_files` (a later run re-owns those rows, so they are
 * copied onto the run now) and sets its final status. Idempotent: a retried call changes nothing.
 */
export function makeFinishRun({ sql }: ActivityDeps) {
  return async function finishRun(input: FinishRunInput): Promise<RunSummary> {
    await sql`
      with f as (${runFileFigures(sql, input.ingestionId, input.runId)})
      update autoloader.runs r set
        files_processed = f.processed,
        files_failed = f.failed,
        files_skipped = greatest(r.files_discovered - f.queued, 0),
        records_written = f.records,
        rows_rejected = f.rejected,
        bytes_read = f.bytes,
        finished_at = now(),
        duration_ms = (extract(epoch from now() - r.started_at) * 1000)::bigint,
        error = ${input.outcome?.error ?? null},
        status = case
          when ${input.outcome?.status ?? null}::text is not null then ${input.outcome?.status ?? null}::text
          when f.failed > 0 and f.processed = 0 then 'FAILED'
          when f.failed > 0 then 'PARTIAL_SUCCESS'
          else 'SUCCESS' end
      from f
      where r.id = ${input.runId} and r.status in ('RUNNING', 'PAUSED')`;
    // Files the run queued but never reached (cancelled or failed run) go back to the queue for the next run.
    await releaseRunClaims(sql, input.ingestionId, input.runId);
    const [r] = await sql<RunSummary[]>`
      select id as "runId", status, files_discovered as "filesDiscovered", files_processed as "filesProcessed",
             files_failed as "filesFailed", files_skipped as "filesSkipped",
             -- int8 arrives as a string from postgres.js; these figures stay far below 2^53.
             records_written::float8 as "recordsWritten", bytes_read::float8 as "bytesRead",
             coalesce(duration_ms, 0)::float8 as "durationMs", error
      from autoloader.runs where id = ${input.runId}`;
    if (!r) throw new Error(`run ${input.runId} vanished`);
    return r;
  };
}
