import {
  type Client,
  WorkflowExecutionAlreadyStartedError,
  type WorkflowHandle,
  WorkflowNotFoundError,
  type WorkflowStartOptions,
} from '@temporalio/client';
import type { Workflow } from '@temporalio/common';
import { errors } from '../domain/errors.js';
import { heldBy, type OperationMemo, workflowIds } from '../temporal/ids.js';
import { searchAttributePairs } from '../temporal/search-attributes.js';
import type { ServiceDeps } from './deps.js';

/** The run or operation holding the ingestion right now, as its workflow's memo names it. */
export async function currentOperationId(temporal: Client, ingestionId: string): Promise<string | undefined> {
  const desc = await temporal.workflow.getHandle(workflowIds.ingestion(ingestionId)).describe();
  return heldBy(desc.memo as Partial<OperationMemo> | undefined);
}

/** Whether a run or operation holds the ingestion right now (a snapshot: it may change at once). */
export async function isBusy(temporal: Client, ingestionId: string): Promise<boolean> {
  try {
    const desc = await temporal.workflow.getHandle(workflowIds.ingestion(ingestionId)).describe();
    return desc.status.name === 'RUNNING';
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return false;
    throw err;
  }
}

/**
 * Answers 409 before slow work (a listing for an estimate) when something already holds the
 * ingestion. Only a fast path: the guarantee is the workflow-id uniqueness of startExclusive.
 */
export async function refuseIfBusy(temporal: Client, ingestionId: string, detail?: string): Promise<void> {
  try {
    const desc = await temporal.workflow.getHandle(workflowIds.ingestion(ingestionId)).describe();
    if (desc.status.name !== 'RUNNING') return;
    throw errors.runInProgress(heldBy(desc.memo as Partial<OperationMemo> | undefined), detail);
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return;
    throw err;
  }
}

/**
 * Starts a mutating workflow under the ingestion's workflow id: Temporal refuses a second one while
 * one is open, which makes "one operation per ingestion" a server-side guarantee, not a
 * check-then-act race. A refusal becomes RUN_IN_PROGRESS naming what holds the ingestion.
 *
 * The workflow carries search attributes (ingestion, tenant, operation, run, trigger) and a summary
 * naming what it does to which table (`describe` gets the table's name), so the Temporal UI's list
 * tells the runs and operations of one ingestion apart.
 */
export async function startExclusive<W extends Workflow>(
  deps: Pick<ServiceDeps, 'temporal' | 'taskQueue' | 'sql'>,
  ingestionId: string,
  workflow: W,
  options: {
    args: Parameters<W>;
    memo: OperationMemo;
    trigger?: string;
    describe: (table: string) => string;
    conflictDetail?: string;
  },
): Promise<WorkflowHandle<W>> {
  const [ingestion] = await deps.sql<{ tenantId: string; table: string }[]>`
    select tenant_id as "tenantId", destination_schema || '.' || destination_table as "table"
    from autoloader.ingestions where id = ${ingestionId}`;
  try {
    return await deps.temporal.workflow.start(workflow, {
      workflowId: workflowIds.ingestion(ingestionId),
      taskQueue: deps.taskQueue,
      args: options.args,
      memo: { ...options.memo },
      typedSearchAttributes: searchAttributePairs({
        ingestionId,
        tenantId: ingestion?.tenantId,
        operation: options.memo.operation,
        runId: options.memo.runId,
        trigger: options.trigger ?? 'manual',
      }),
      staticSummary: options.describe(ingestion?.table ?? ingestionId),
      workflowIdConflictPolicy: 'FAIL',
    } as unknown as WorkflowStartOptions<W>);
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) {
      throw errors.runInProgress(
        await currentOperationId(deps.temporal, ingestionId),
        options.conflictDetail,
      );
    }
    throw err;
  }
}
