import {
  ApplicationFailure,
  CancellationScope,
  ContinueAsNew,
  isCancellation,
  makeContinueAsNewFunc,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { RunSummary } from '../activities/finish-run.js';
import type { Activities } from '../activities/index.js';
import { type RunProgress, runProgressQuery } from './messages.js';
import { longActivity, shortActivity } from './options.js';
import { notifyWebhooks } from './webhook-delivery.js';

export interface IngestionRunInput {
  runId: string;
  ingestionId: string;
  trigger: string;
  /** Parallel lanes: each loads one file at a time with its own COPY stream. */
  parallelism: number;
  batchMaxFiles: number;
  batchMaxBytes: number;
  /** A swap refresh loads into a shadow table with its own file history; default: the live ones. */
  target?: { scope: string; table: string };
  /** Set when the workflow continued as new: start and discovery are already done. */
  resumed?: { filesQueued: number; filesDone: number; filesFailed: number };
}

const short = proxyActivities<Activities>(shortActivity);
/** An activity call with a summary of its own, which the Temporal UI shows on the event. */
const longAs = (summary: string) => proxyActivities<Activities>({ ...longActivity, summary });

/**
 * One ingestion run (seed 002's orchestrator): record the run, discover files into Postgres, load
 * them in parallel lanes, freeze the metrics. The workflow only ever holds counters: file lists live
 * in Postgres, and the history is cut with continue-as-new whenever the server suggests it.
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
  };
  setHandler(runProgressQuery, () => progress);

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
      ).discoverFiles({ runId, ingestionId, scope });
      progress.filesQueued = discovered.filesQueued;
    }

    progress.phase = 'loading';
    let historyFull = false;
    const lane = async (n: number) => {
      const name = `${runId}/lane-${n}`;
      for (;;) {
        if (workflowInfo().continueAsNewSuggested) {
          historyFull = true;
          return;
        }
        const r = await longAs(
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
        if (r.claimed === 0) return;
        progress.filesDone += r.succeeded;
        progress.filesFailed += r.failed;
      }
    };
    // When one lane fails, the others are cancelled and waited for before the run is closed: no
    // file is still loading under a run that has ended.
    const lanes = new CancellationScope();
    await lanes.run(async () => {
      let failure: { err: unknown } | undefined;
      await Promise.allSettled(
        Array.from({ length: input.parallelism }, (_, n) =>
          lane(n).catch((err: unknown) => {
            if (!failure) {
              failure = { err };
              lanes.cancel();
            }
          }),
        ),
      );
      if (failure) throw failure.err;
    });
    if (historyFull) {
      // Carry the memo over: it names the run in 409 answers while the ingestion is busy.
      await makeContinueAsNewFunc<typeof ingestionRunWorkflow>({ memo: workflowInfo().memo })({
        ...input,
        resumed: {
          filesQueued: progress.filesQueued,
          filesDone: progress.filesDone,
          filesFailed: progress.filesFailed,
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
