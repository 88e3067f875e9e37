import { defineQuery } from '@temporalio/workflow';

export interface RunProgress {
  runId: string;
  phase: 'starting' | 'discovering' | 'loading' | 'finishing' | 'done';
  filesQueued: number;
  filesDone: number;
  filesFailed: number;
}

/** Live progress of a run, answered by the workflow itself (the API falls back to Postgres). */
export const runProgressQuery = defineQuery<RunProgress>('runProgress');
