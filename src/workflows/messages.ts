import { defineQuery, defineUpdate } from '@temporalio/workflow';

export interface RunProgress {
  runId: string;
  phase: 'starting' | 'discovering' | 'loading' | 'finishing' | 'done';
  filesQueued: number;
  filesDone: number;
  filesFailed: number;
  /** Paused (POST /runs/{id}/pause): lanes claim no more files once their current batch is done. */
  paused: boolean;
  /** The number of lanes the run loads with (PATCH /runs/{id} `max_parallel_files`). */
  maxParallelFiles: number;
  /** processFiles batches loading right now: 0 once a paused run has settled. */
  batchesInFlight: number;
}

/** Live progress of a run, answered by the workflow itself (the API falls back to Postgres). */
export const runProgressQuery = defineQuery<RunProgress>('runProgress');

/**
 * Pause, resume and throttle a run (updates rather than signals, so a run that is past loading can
 * refuse them and the caller hears so). Each answers with the run's progress after the change; a
 * refused one fails with an ApplicationFailure of type `RunNotRunning`.
 */
export const pauseRunUpdate = defineUpdate<RunProgress>('pauseRun');
export const resumeRunUpdate = defineUpdate<RunProgress>('resumeRun');
export const throttleRunUpdate = defineUpdate<RunProgress, [maxParallelFiles: number]>('throttleRun');
export const runNotRunningFailure = 'RunNotRunning';

export interface OperationPrepared {
  /** The steps done before the run was handed off (or all steps, when there is no run). */
  steps: import('../db/schema/index.js').OperationStep[];
  runId: string | null;
}

/**
 * Answered once the operation's preparatory steps are done (table dropped, history cleared, run
 * started): the API waits on it to answer the request with what was actually done.
 */
export const operationPreparedUpdate = defineUpdate<OperationPrepared>('operationPrepared');

/** The steps done so far, from the workflow's own state (readable even when Postgres is not). */
export const operationStepsQuery = defineQuery<OperationPrepared>('operationSteps');
