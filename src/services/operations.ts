import { type Client, WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { errors } from '../api/errors.js';
import type { Sql } from '../db/client.js';
import { newId } from '../lib/ids.js';
import { clearProcessedFilesWorkflow, ingestionRunWorkflow } from '../workflows/index.js';

/**
 * Every mutating operation on an ingestion (run, clear, and later refreshes) runs under this one
 * workflow id. Temporal refuses a second start while one is open, which makes "one operation per
 * ingestion" a server-side guarantee rather than a check-then-act race.
 */
export const ingestionWorkflowId = (ingestionId: string) => `ingestion/${ingestionId}`;

export interface OperationMemo {
  operation: string;
  runId?: string;
  operationId?: string;
}

export interface OperationDeps {
  temporal: Client;
  sql: Sql;
  taskQueue: string;
  runDefaults: { parallelism: number; batchMaxFiles: number; batchMaxBytes: number };
}

/** The id a 409 points at: the run (or operation) holding the ingestion right now. */
export async function currentOperationId(temporal: Client, ingestionId: string): Promise<string | undefined> {
  const desc = await temporal.workflow.getHandle(ingestionWorkflowId(ingestionId)).describe();
  const memo = (desc.memo ?? {}) as Partial<OperationMemo>;
  return memo.runId ?? memo.operationId;
}

async function conflict(temporal: Client, ingestionId: string): Promise<never> {
  throw errors.runInProgress(await currentOperationId(temporal, ingestionId));
}

export async function startIngestionRun(deps: OperationDeps, ingestionId: string, trigger: string) {
  const runId = newId('run');
  const workflowId = ingestionWorkflowId(ingestionId);
  try {
    await deps.temporal.workflow.start(ingestionRunWorkflow, {
      workflowId,
      taskQueue: deps.taskQueue,
      args: [{ runId, ingestionId, trigger, ...deps.runDefaults }],
      memo: { operation: 'run', runId } satisfies OperationMemo,
      workflowIdConflictPolicy: 'FAIL',
    });
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) return conflict(deps.temporal, ingestionId);
    throw err;
  }
  // The workflow's first activity inserts the same row; whichever comes first wins.
  await deps.sql`
    insert into autoloader.runs (id, ingestion_id, status, trigger, workflow_id)
    values (${runId}, ${ingestionId}, 'RUNNING', ${trigger}, ${workflowId})
    on conflict (id) do nothing`;
  return runId;
}

export async function clearProcessedFiles(deps: OperationDeps, ingestionId: string) {
  const operationId = newId('op');
  try {
    return await deps.temporal.workflow.execute(clearProcessedFilesWorkflow, {
      workflowId: ingestionWorkflowId(ingestionId),
      taskQueue: deps.taskQueue,
      args: [{ ingestionId }],
      memo: { operation: 'clear_processed_files', operationId } satisfies OperationMemo,
      workflowIdConflictPolicy: 'FAIL',
    });
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) return conflict(deps.temporal, ingestionId);
    throw err;
  }
}
