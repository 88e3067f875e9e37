import { defineQuery, defineUpdate } from '@temporalio/workflow';

export interface RunProgress {
  runId: string;
  phase: 'starting' | 'discovering' | 'loading' | 'finishing' | 'done';
  filesQueued: number;
  filesDone: number;
  filesFailed: number;
}

/** Live progress of a run, answered by the workflow itself (the API falls back to Postgres). */
export const runProgressQuery = defineQuery<RunProgress>('runProgress');

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
