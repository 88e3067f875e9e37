import type { ActivityDeps } from './deps.js';

export interface SetRunStatusInput {
  runId: string;
  status: 'RUNNING' | 'PAUSED';
}

/**
 * Shows a run as PAUSED once its lanes have settled, and as RUNNING again before they claim more:
 * a file commits only under a RUNNING run, so no batch loads while the row says PAUSED. A run that
 * has already closed keeps its final status. Idempotent.
 */
export function makeSetRunStatus({ sql }: ActivityDeps) {
  return async function setRunStatus(input: SetRunStatusInput): Promise<void> {
    await sql`
      update autoloader.runs set status = ${input.status}
      where id = ${input.runId} and status in ('RUNNING', 'PAUSED')`;
  };
}
