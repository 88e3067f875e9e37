import { WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { RunStatus } from '../db/schema/index.js';
import { AppError, errors } from '../domain/errors.js';
import { newId } from '../lib/ids.js';
import { workflowIds } from '../temporal/ids.js';
import { ingestionRunWorkflow } from '../workflows/index.js';
import {
  pauseRunUpdate,
  type RunProgress,
  resumeRunUpdate,
  runNotRunningFailure,
  throttleRunUpdate,
} from '../workflows/messages.js';
import type { ServiceDeps } from './deps.js';
import { startExclusive } from './operations.js';

export interface RunView {
  id: string;
  ingestionId: string;
  status: RunStatus;
  trigger: string;
  workflowId: string;
  startedAt: Date;
  finishedAt: Date | null;
  filesDiscovered: number;
  filesProcessed: number;
  filesFailed: number;
  filesSkipped: number;
  recordsWritten: number;
  rowsRejected: number;
  bytesRead: number;
  durationMs: number | null;
  error: string | null;
  /** Live while RUNNING or PAUSED: files done out of files queued. */
  progress: {
    filesTotal: number;
    filesDone: number;
    filesFailed: number;
    recordsWritten: number;
    rowsRejected: number;
  } | null;
}

/** A run whose workflow is still at it: loading, or paused between batches. */
export const isLive = (status: RunStatus) => status === 'RUNNING' || status === 'PAUSED';

export async function startIngestionRun(
  deps: ServiceDeps,
  ingestionId: string,
  trigger: string,
): Promise<string> {
  const runId = newId('run');
  await startExclusive(deps, ingestionId, ingestionRunWorkflow, {
    args: [{ runId, ingestionId, trigger, ...deps.runDefaults }],
    memo: { operation: 'run', runId },
    trigger,
    describe: (table) => `run ${runId} into ${table} (${trigger})`,
  });
  // The workflow's first activity inserts the same row; whichever comes first wins.
  await deps.sql`
    insert into autoloader.runs (id, ingestion_id, status, trigger, workflow_id)
    values (${runId}, ${ingestionId}, 'RUNNING', ${trigger}, ${workflowIds.ingestion(ingestionId)})
    on conflict (id) do nothing`;
  return runId;
}

/**
 * A run as its tenant sees it. While it runs, progress is counted from `processed_files` (the source
 * of truth the workflow writes through), so it is right even across worker restarts.
 */
export async function getRun(
  deps: Pick<ServiceDeps, 'sql'> & Partial<Pick<ServiceDeps, 'temporal'>>,
  tenantId: string,
  runId: string,
): Promise<RunView> {
  const { sql } = deps;
  const [r] = await sql<Omit<RunView, 'progress'>[]>`
    select r.id, r.ingestion_id as "ingestionId", r.status, r.trigger, r.workflow_id as "workflowId",
           r.started_at as "startedAt", r.finished_at as "finishedAt", r.files_discovered as "filesDiscovered",
           r.files_processed as "filesProcessed", r.files_failed as "filesFailed", r.files_skipped as "filesSkipped",
           -- int8 arrives as a string from postgres.js; these figures stay far below 2^53.
           r.records_written::float8 as "recordsWritten", r.rows_rejected::float8 as "rowsRejected", r.bytes_read::float8 as "bytesRead",
           r.duration_ms::float8 as "durationMs", r.error
    from autoloader.runs r join autoloader.ingestions i on i.id = r.ingestion_id
    where r.id = ${runId} and i.tenant_id = ${tenantId}`;
  if (!r) throw errors.runNotFound();
  if (deps.temporal && (await closeIfStale({ sql, temporal: deps.temporal }, r)))
    return getRun({ sql }, tenantId, runId);
  let progress: RunView['progress'] = null;
  if (isLive(r.status)) {
    const [p] = await sql<
      { total: number; done: number; failed: number; records: number; rejected: number }[]
    >`
      select count(*)::int as total,
             count(*) filter (where status in ('SUCCESS', 'FAILED'))::int as done,
             count(*) filter (where status = 'FAILED')::int as failed,
             coalesce(sum(records_ingested) filter (where status = 'SUCCESS'), 0)::float8 as records,
             coalesce(sum(rows_rejected) filter (where status = 'SUCCESS'), 0)::float8 as rejected
      from autoloader.processed_files where ingestion_id = ${r.ingestionId} and run_id = ${r.id}`;
    progress = {
      filesTotal: p?.total ?? 0,
      filesDone: p?.done ?? 0,
      filesFailed: p?.failed ?? 0,
      recordsWritten: p?.records ?? 0,
      rowsRejected: p?.rejected ?? 0,
    };
  }
  return { ...r, progress };
}

/** An ingestion's runs, newest first, paged by run id. */
export async function listRuns(
  deps: Pick<ServiceDeps, 'sql'>,
  tenantId: string,
  ingestionId: string,
  page: { limit: number; cursor?: string },
): Promise<{ items: RunView[]; nextCursor: string | null }> {
  const { sql } = deps;
  const { limit, cursor } = page;
  if (cursor) {
    const [known] =
      await sql`select 1 from autoloader.runs where id = ${cursor} and ingestion_id = ${ingestionId}`;
    if (!known)
      throw new AppError('VALIDATION_ERROR', 'Invalid query: cursor: not a next_cursor of this list', {
        field: 'cursor',
      });
  }
  const ids = await sql<{ id: string }[]>`
    select id from autoloader.runs
    where ingestion_id = ${ingestionId} ${cursor ? sql`and (started_at, id) < (select started_at, id from autoloader.runs where id = ${cursor})` : sql``}
    order by started_at desc, id desc limit ${limit + 1}`;
  const shown = ids.slice(0, limit);
  const items = await Promise.all(shown.map((r) => getRun(deps, tenantId, r.id)));
  return { items, nextCursor: ids.length > limit ? shown.at(-1)!.id : null };
}

/**
 * A run marked RUNNING (or PAUSED) whose workflow is no longer running (terminated from the Temporal
 * UI, timed out, or its history lost) is closed with the reason, so it does not stay RUNNING for ever
 * and block deleting its ingestion. Returns whether it was closed.
 */
export async function closeIfStale(
  deps: Pick<ServiceDeps, 'sql' | 'temporal'>,
  run: { id: string; workflowId: string; status: RunStatus },
): Promise<boolean> {
  if (!isLive(run.status)) return false;
  let status: string;
  let heldBy: string | undefined;
  try {
    const desc = await deps.temporal.workflow.getHandle(run.workflowId).describe();
    status = desc.status.name;
    heldBy = (desc.memo as { runId?: string } | undefined)?.runId;
  } catch (err) {
    if (!(err instanceof WorkflowNotFoundError)) throw err;
    status = 'NOT_FOUND';
  }
  // The ingestion's workflow id carries later runs too: only the execution that names this run counts.
  const live = status === 'RUNNING' && (heldBy === undefined || heldBy === run.id);
  if (live) return false;
  const cancelled = status === 'CANCELLED' && heldBy === run.id;
  const closed = await deps.sql`
    update autoloader.runs
    set status = ${cancelled ? 'CANCELLED' : 'FAILED'}, finished_at = coalesce(finished_at, now()),
        error = ${cancelled ? 'cancelled' : `its workflow is ${status.toLowerCase().replaceAll('_', ' ')} without having finished the run`}
    where id = ${run.id} and status in ('RUNNING', 'PAUSED')`;
  if (closed.count > 0) {
    await deps.sql`
      update autoloader.processed_files set status = 'DISCOVERED', claimed_by = null, updated_at = now()
      where run_id = ${run.id} and status = 'PROCESSING'`;
  }
  return closed.count > 0;
}

/**
 * Cancels a running (or paused) run: its workflow is cancelled, the files in flight finish or roll
 * back, and the run ends CANCELLED with its metrics; nothing loads under it afterwards. Waits a
 * little for that.
 */
export async function cancelRun(deps: ServiceDeps, tenantId: string, runId: string): Promise<RunView> {
  const run = await getRun(deps, tenantId, runId);
  if (!isLive(run.status)) return run;
  const handle = deps.temporal.workflow.getHandle(run.workflowId);
  const desc = await handle.describe();
  const memoRun = (desc.memo as { runId?: string } | undefined)?.runId;
  if (desc.status.name === 'RUNNING' && (memoRun === undefined || memoRun === run.id)) {
    await handle.cancel();
    await Promise.race([
      handle.result().catch(() => undefined),
      new Promise((resolve) => setTimeout(resolve, deps.refresh.responseWaitMs).unref()),
    ]);
  }
  return getRun(deps, tenantId, runId);
}

/** What pause, resume and throttle change on a run. */
export type RunControl = { paused: boolean } | { maxParallelFiles: number };

/**
 * Pauses, resumes or throttles a run by an update to its workflow (a refresh's run is its own
 * child workflow, named on the run row like any other). Pausing lets the batches in flight finish;
 * the run shows PAUSED once they have. Answers with the run and the workflow's progress after the
 * change. A run that has ended, or is ending, is RUN_NOT_RUNNING.
 */
export async function controlRun(
  deps: ServiceDeps,
  tenantId: string,
  runId: string,
  change: RunControl,
): Promise<RunView & { control: RunProgress }> {
  const run = await getRun(deps, tenantId, runId);
  if (!isLive(run.status)) throw errors.runNotRunning(run.id, run.status);
  const handle = deps.temporal.workflow.getHandle(run.workflowId);
  let control: RunProgress;
  try {
    control =
      'maxParallelFiles' in change
        ? await handle.executeUpdate(throttleRunUpdate, { args: [change.maxParallelFiles] })
        : await handle.executeUpdate(change.paused ? pauseRunUpdate : resumeRunUpdate);
  } catch (err) {
    // It ended between the read above and the update: closed, or past its last batch.
    const ended =
      err instanceof WorkflowNotFoundError ||
      (err instanceof WorkflowUpdateFailedError &&
        err.cause instanceof ApplicationFailure &&
        err.cause.type === runNotRunningFailure);
    if (!ended) throw err;
    const now = await getRun(deps, tenantId, runId);
    throw errors.runNotRunning(now.id, isLive(now.status) ? 'finishing' : now.status);
  }
  return { ...(await getRun(deps, tenantId, runId)), control };
}
