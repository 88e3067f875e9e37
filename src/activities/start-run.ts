import { releaseClaims } from '../ledger/processed-files.js';
import type { ActivityDeps } from './deps.js';

export interface StartRunInput {
  runId: string;
  ingestionId: string;
  trigger: string;
  workflowId: string;
  /** File-history scope of the run ('live', or a swap refresh's own). */
  scope: string;
}

/**
 * Records the run (the API usually inserted it already; this makes the workflow self-sufficient)
 * and returns files a crashed earlier run left claimed to the queue: only one mutating workflow runs
 * per ingestion, so nothing else can be holding them.
 */
export function makeStartRun({ sql }: ActivityDeps) {
  return async function startRun(input: StartRunInput): Promise<void> {
    await sql.begin(async (tx) => {
      await tx`
        insert into autoloader.runs (id, ingestion_id, status, trigger, workflow_id)
        values (${input.runId}, ${input.ingestionId}, 'RUNNING', ${input.trigger}, ${input.workflowId})
        on conflict (id) do nothing`;
      // Only one mutating workflow runs per ingestion: any other run still marked RUNNING or PAUSED
      // belongs to a workflow that is gone (terminated from the UI, timed out) and is closed now, saying so.
      await tx`
        update autoloader.runs
        set status = 'FAILED', finished_at = now(),
            error = 'its workflow stopped without finishing it (terminated or timed out); a later run took over'
        where ingestion_id = ${input.ingestionId} and status in ('RUNNING', 'PAUSED') and id <> ${input.runId}`;
      await releaseClaims(tx, input.ingestionId, input.scope);
    });
  };
}
