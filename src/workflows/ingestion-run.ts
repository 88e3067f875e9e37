import {
  ApplicationFailure,
  CancellationScope,
  ContinueAsNew,
  condition,
  isCancellation,
  makeContinueAsNewFunc,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { RunSummary } from '../activities/finish-run.js';
import type { Activities } from '../activities/index.js';
import { searchAttributeKeys } from '../temporal/search-attributes.js';
import {
  pauseRunUpdate,
  type RunProgress,
  resumeRunUpdate,
  runNotRunningFailure,
  runProgressQuery,
  throttleRunUpdate,
} from './messages.js';
import { longActivity, shortActivity } from './options.js';
import { notifyWebhooks } from './webhook-delivery.js';

export interface IngestionRunInput {
  runId: string;
  ingestionId: string;
  trigger: string;
  /** Parallel lanes: each loads one file at a time with its own COPY stream. Throttling changes it. */
  parallelism: number;
  batchMaxFiles: number;
  batchMaxBytes: number;
  /** A swap refresh loads into a shadow table with its own file history; default: the live ones. */
  target?: { scope: string; table: string };
  /**
   * A refresh's snapshot of the source (ISO 8601): only files last modified by then are loaded;
   * files (or versions) that arrive while the refresh runs are left for the next run.
   */
  modifiedBefore?: string;
  /** Set when the workflow continued as new: start and discovery are already done. */
  resumed?: {
    filesQueued: number;
    filesDone: number;
    filesFailed: number;
    /** Paused when it continued as new (absent before pausing existed). */
    paused?: boolean;
    /** Whether the run row said PAUSED then. */
    recordedPaused?: boolean;
  };
}

const short = proxyActivities<Activities>(shortActivity);
/** An activity call with a summary of its own, which the Temporal UI shows on the event. */
const longAs = (summary: string) => proxyActivities<Activities>({ ...longActivity, summary });

/**
 * One ingestion run (seed 002's orchestrator): record the run, discover files into Postgres, load
 * them in parallel lanes, freeze the metrics. The workflow only ever holds counters: file lists live
 * in Postgres, and the history is cut with continue-as-new whenever the server suggests it. Updates
 * pause, resume and throttle the lanes between batches (POST /runs/{id}/pause, PATCH /runs/{id}).
 */
export async function ingestionRunWorkflow(input: IngestionRunInput): Promise<RunSummary> {
  const { runId, ingestionId } = input;
  const scope = input.target?.scope ?? 'live';
  const progress: RunProgress = {
    runId,
    phase: input.resumed ? 'loading' : 'starting',
    filesQueued: input.resumed?.filesQueued ?? 0,
    filesDone: input.resumed?.filesDone ?? 0,
    filesFailed: input.resumed?.filesFailed ?? 0,
    paused: input.resumed?.paused ?? false,
    maxParallelFiles: input.parallelism,
    batchesInFlight: 0,
  };
  setHandler(runProgressQuery, () => progress);

  // What the run row says (PAUSED or RUNNING), kept in step with `progress` by one writer during
  // loading; `writing` while that write is on its way. A file commits only under a RUNNING run, so
  // lanes claim nothing while the row says PAUSED or is about to change.
  let recordedPaused = input.resumed?.recordedPaused ?? false;
  let writing = false;
  const settledPaused = () =>
    progress.paused && progress.phase === 'loading' && progress.batchesInFlight === 0;
  const showDetails = () =>
    setCurrentDetails(
      progress.paused
        ? recordedPaused
          ? `**Paused**: ${progress.filesDone} of ${progress.filesQueued} files done; resume with POST /api/v1/runs/${runId}/resume`
          : `**Pausing**: waiting for ${progress.batchesInFlight} batches in flight to finish`
        : `${progress.phase}: ${progress.filesDone} of ${progress.filesQueued} files done, ${progress.maxParallelFiles} lanes`,
    );
  const refuseUnlessLive = () => {
    if (progress.phase === 'finishing' || progress.phase === 'done')
      throw ApplicationFailure.nonRetryable(`run ${runId} is ${progress.phase}`, runNotRunningFailure);
  };
  const apply = (change: Partial<Pick<RunProgress, 'paused' | 'maxParallelFiles'>>) => {
    Object.assign(progress, change);
    showDetails();
    return progress;
  };
  setHandler(pauseRunUpdate, () => apply({ paused: true }), { validator: refuseUnlessLive });
  setHandler(resumeRunUpdate, () => apply({ paused: false }), { validator: refuseUnlessLive });
  setHandler(throttleRunUpdate, (lanes) => apply({ maxParallelFiles: lanes }), {
    validator: (lanes) => {
      refuseUnlessLive();
      if (!Number.isInteger(lanes) || lanes < 1)
        throw ApplicationFailure.nonRetryable(`max_parallel_files must be a positive integer, not ${lanes}`);
    },
  });

  try {
    if (!input.resumed) {
      await short.startRun({
        runId,
        ingestionId,
        trigger: input.trigger,
        workflowId: workflowInfo().workflowId,
        scope,
      });
      progress.phase = 'discovering';
      const discovered = await longAs(
        `list the source for new and changed files (${scope === 'live' ? 'live table' : 'shadow table'})`,
      ).discoverFiles({
        runId,
        ingestionId,
        scope,
        ...(input.modifiedBefore ? { modifiedBefore: input.modifiedBefore } : {}),
      });
      progress.filesQueued = discovered.filesQueued;
    }

    progress.phase = 'loading';
    showDetails();
    let historyFull = false;
    // A lane that found the queue empty: the others finish what they hold, and no new lane starts.
    let drained = false;
    const mayClaim = (n: number) =>
      historyFull || n >= progress.maxParallelFiles || (!progress.paused && !recordedPaused && !writing);
    const lane = async (n: number) => {
      const name = `${runId}/lane-${n}`;
      for (;;) {
        // Paused: wait here, between batches. Unpaused runs never wait, so their commands are as before.
        if (!mayClaim(n)) await condition(() => mayClaim(n) || workflowInfo().continueAsNewSuggested);
        if (workflowInfo().continueAsNewSuggested) {
          historyFull = true;
          return;
        }
        // Throttled down: lanes numbered past the new count stop after their batch.
        if (n >= progress.maxParallelFiles) return;
        progress.batchesInFlight++;
        let r: Awaited<ReturnType<Activities['processFiles']>>;
        try {
          r = await longAs(
            `${name}: load a batch of up to ${input.batchMaxFiles} files` +
              (input.target ? ` into ${input.target.table}` : ''),
          ).processFiles({
            runId,
            ingestionId,
            lane: name,
            maxFiles: input.batchMaxFiles,
            maxBytes: input.batchMaxBytes,
            table: input.target?.table,
          });
        } finally {
          progress.batchesInFlight--;
        }
        if (r.claimed === 0) {
          drained = true;
          return;
        }
        progress.filesDone += r.succeeded;
        progress.filesFailed += r.failed;
        showDetails();
      }
    };
    // The one writer of the run row's PAUSED/RUNNING, so a quick pause and resume cannot land out of
    // order. Only a pause ever makes it write: an unpaused run's history is as before.
    let loadingOver = false;
    const keepRowInStep = async () => {
      for (;;) {
        await condition(() => loadingOver || recordedPaused !== settledPaused());
        if (loadingOver) return;
        const paused = settledPaused();
        writing = true;
        await short.setRunStatus({ runId, status: paused ? 'PAUSED' : 'RUNNING' });
        upsertSearchAttributes([{ key: searchAttributeKeys.runState, value: paused ? 'paused' : 'running' }]);
        recordedPaused = paused;
        writing = false;
        showDetails();
      }
    };
    // Not cancellable: a cancelled run waits for its write before it records CANCELLED.
    const rowWriter = CancellationScope.nonCancellable(keepRowInStep);
    // When one lane fails, the others are cancelled and waited for before the run is closed: no
    // file is still loading under a run that has ended.
    const lanes = new CancellationScope();
    try {
      await lanes.run(async () => {
        let failure: { err: unknown } | undefined;
        const live = new Map<number, Promise<void>>();
        const missing = () =>
          Array.from({ length: progress.maxParallelFiles }, (_, n) => n).filter((n) => !live.has(n));
        const startLanes = () => {
          for (const n of missing()) {
            const running = lane(n)
              .catch((err: unknown) => {
                if (!failure) {
                  failure = { err };
                  lanes.cancel();
                }
              })
              .finally(() => live.delete(n));
            live.set(n, running);
          }
        };
        startLanes();
        for (;;) {
          // Throttled up: the new lanes start here. Not cancellable, so that a cancelled run still
          // waits here for its lanes' activities to stop.
          await CancellationScope.nonCancellable(() =>
            condition(
              () => live.size === 0 || (!failure && !historyFull && !drained && missing().length > 0),
            ),
          );
          if (live.size === 0) break;
          startLanes();
        }
        if (failure) throw failure.err;
      });
    } finally {
      loadingOver = true;
      await rowWriter;
    }
    if (historyFull) {
      // Carry the memo over: it names the run in 409 answers while the ingestion is busy.
      await makeContinueAsNewFunc<typeof ingestionRunWorkflow>({ memo: workflowInfo().memo })({
        ...input,
        parallelism: progress.maxParallelFiles,
        resumed: {
          filesQueued: progress.filesQueued,
          filesDone: progress.filesDone,
          filesFailed: progress.filesFailed,
          paused: progress.paused,
          recordedPaused,
        },
      });
    }

    progress.phase = 'finishing';
    const summary = await short.finishRun({ runId, ingestionId });
    progress.phase = 'done';
    await notifyWebhooks({ kind: 'run', runId });
    return summary;
  } catch (err) {
    if (err instanceof ContinueAsNew) throw err;
    progress.phase = 'finishing';
    const cancelled = isCancellation(err);
    const message =
      err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err);
    // Record the outcome even when the workflow is being cancelled: the run must not stay RUNNING.
    await CancellationScope.nonCancellable(() =>
      short.finishRun({
        runId,
        ingestionId,
        outcome: { status: cancelled ? 'CANCELLED' : 'FAILED', error: cancelled ? 'cancelled' : message },
      }),
    );
    if (cancelled) throw err;
    await notifyWebhooks({ kind: 'run', runId });
    throw ApplicationFailure.nonRetryable(`run ${runId} failed: ${message}`, 'RunFailed');
  }
}
