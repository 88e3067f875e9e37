import { EXIT_ERROR, EXIT_OK, EXIT_PARTIAL, type ExitCode } from './errors.js';
import type { OperationJson, RunStatus } from './types.js';

/** SUCCESS → 0, PARTIAL_SUCCESS → 2 (some files failed), FAILED/CANCELLED → 1. */
export function runExitCode(status: RunStatus): ExitCode {
  switch (status) {
    case 'SUCCESS':
      return EXIT_OK;
    case 'PARTIAL_SUCCESS':
      return EXIT_PARTIAL;
    case 'FAILED':
    case 'CANCELLED':
      return EXIT_ERROR;
    case 'RUNNING':
    case 'PAUSED':
      throw new Error('runExitCode: the run has not finished');
  }
}

const succeeded = new Set(['succeeded', 'success', 'completed']);

/** The worse of two outcomes: a failure outweighs a partial success, which outweighs success. */
export function worse(a: ExitCode, b: ExitCode): ExitCode {
  if (a === EXIT_ERROR || b === EXIT_ERROR) return EXIT_ERROR;
  if (a === EXIT_PARTIAL || b === EXIT_PARTIAL) return EXIT_PARTIAL;
  return EXIT_OK;
}

/**
 * An operation's outcome, with the outcome of the run it started: success → 0, partial_failure → 2,
 * failed/cancelled → 1; a run ending PARTIAL_SUCCESS makes an otherwise successful operation 2.
 * An unknown status counts as a failure: a script must not read an outcome we cannot vouch for as 0.
 */
export function operationExitCode(status: string, runStatus?: RunStatus | null): ExitCode {
  // failed, cancelled and anything unrecognised are all 1.
  const own: ExitCode = succeeded.has(status)
    ? EXIT_OK
    : status === 'partial_failure'
      ? EXIT_PARTIAL
      : EXIT_ERROR;
  return runStatus && runStatus !== 'RUNNING' && runStatus !== 'PAUSED'
    ? worse(own, runExitCode(runStatus))
    : own;
}

/**
 * Whether an operation has ended. `partial_failure` with `finished_at: null` has not: it is this
 * server's report that a step is failing and being retried, and the workflow completes by itself
 * when the fault clears (README, "Refreshing a table without fear"). Without a `finished_at`
 * field (another server's operations), only `running`/`pending` mean it still goes.
 */
export function operationFinished(op: OperationJson): boolean {
  if (op.status === 'running' || op.status === 'pending' || op.status === 'accepted') return false;
  if ('finished_at' in op) return op.finished_at != null || op.status !== 'partial_failure';
  return true;
}
