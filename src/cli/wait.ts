import type { ApiClient } from './client.js';
import { ApiRequestError, type ExitCode } from './errors.js';
import { operationExitCode, operationFinished } from './outcome.js';
import type { ProgressReporter } from './progress.js';
import type { OperationJson, RunJson } from './types.js';

/** About once a second: GET /runs/{id} is one small query, and a person watching wants it live. */
const POLL_MS = 1_000;
/** How long a run named by its operation may take to record itself before "not found" is an error. */
const runStartGraceMs = 60_000;

export interface WaitOptions {
  pollMs?: number;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
}

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls a run until it ends (a PAUSED run has not), drawing its progress; returns the finished run. */
export async function followRun(
  api: ApiClient,
  runId: string,
  reporter: ProgressReporter,
  opts: WaitOptions = {},
): Promise<RunJson> {
  const sleep = opts.sleep ?? defaultSleep;
  const now = opts.now ?? Date.now;
  const named = now();
  for (;;) {
    let run: RunJson;
    try {
      ({ body: run } = await api.request<RunJson>('GET', `/runs/${encodeURIComponent(runId)}`));
    } catch (err) {
      // An operation names its run as it starts it, a moment before the run records itself: not
      // found yet is "starting", for a while.
      if (
        !(err instanceof ApiRequestError && err.body.error_code === 'RUN_NOT_FOUND') ||
        now() - named > runStartGraceMs
      )
        throw err;
      await sleep(opts.pollMs ?? POLL_MS);
      continue;
    }
    if (run.status !== 'RUNNING' && run.status !== 'PAUSED') {
      reporter.finish();
      return run;
    }
    const p = run.progress;
    reporter.update(`run ${run.id}`, {
      at: now(),
      filesTotal: p?.files_total ?? 0,
      filesDone: p?.files_done ?? 0,
      filesFailed: p?.files_failed ?? 0,
      rows: p?.records_written ?? 0,
    });
    await sleep(opts.pollMs ?? POLL_MS);
  }
}

export interface FollowedOperation {
  operation: OperationJson;
  run: RunJson | null;
  exitCode: ExitCode;
}

/**
 * Follows an operation to its end: once it names its run (`run_id`), that run's progress is drawn
 * until it finishes; then the operation is polled until its last steps (a swap, say) are recorded.
 */
export async function waitForOperation(
  api: ApiClient,
  operationId: string,
  reporter: ProgressReporter,
  opts: WaitOptions = {},
): Promise<FollowedOperation> {
  const sleep = opts.sleep ?? defaultSleep;
  let run: RunJson | null = null;
  let lastStatus: string | null = null;
  for (;;) {
    const { body: op } = await api.request<OperationJson>(
      'GET',
      `/operations/${encodeURIComponent(operationId)}`,
    );
    // Changes along the way are worth a line; the final status is the command's to print.
    if (op.status !== lastStatus && !operationFinished(op)) {
      if (lastStatus !== null || op.status !== 'running') {
        reporter.note(
          op.status === 'partial_failure'
            ? `operation ${op.id}: a step is failing and being retried; it completes by itself when the fault clears`
            : `operation ${op.id}: ${op.status}`,
        );
      }
      lastStatus = op.status;
    }
    if (op.run_id && run === null) {
      run = await followRun(api, op.run_id, reporter, opts);
      continue;
    }
    if (operationFinished(op)) {
      if (op.error) reporter.note(`  error: ${op.error}`);
      return { operation: op, run, exitCode: operationExitCode(op.status, run?.status) };
    }
    await sleep(opts.pollMs ?? POLL_MS);
  }
}
