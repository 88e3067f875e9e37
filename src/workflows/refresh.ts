import {
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  ChildWorkflowFailure,
  condition,
  isCancellation,
  patched,
  proxyActivities,
  setHandler,
  startChild,
  workflowInfo,
} from '@temporalio/workflow';
import type { SourceImpact } from '../activities/estimate-impact.js';
import type { Activities } from '../activities/index.js';
import type { Selection } from '../activities/reprocess.js';
import type { OperationStep } from '../db/schema/index.js';
import { failedChecks, type SwapChecks } from '../refresh/checks.js';
import { launchesRun, type OperationType, type RefreshStrategy, refreshModes } from '../refresh/modes.js';
import { workflowIds } from '../temporal/ids.js';
import { childSearchAttributes, spoken } from '../temporal/search-attributes.js';
import { type ApprovalDecision, abortOperationUpdate, approveOperationUpdate } from './approval.js';
import { ingestionRunWorkflow } from './ingestion-run.js';
import { type OperationPrepared, operationPreparedUpdate, operationStepsQuery } from './messages.js';
import { longActivity, shortActivity, swapActivity } from './options.js';
import { armPendingDeletion } from './pending-deletion.js';
import { notifyWebhooks } from './webhook-delivery.js';

const short = proxyActivities<Activities>(shortActivity);
const long = proxyActivities<Activities>(longActivity);
const swap = proxyActivities<Activities>(swapActivity);

/** The run an operation launches, as the Temporal UI lists it: its own run id, triggered by the operation. */
function runChildLabels(input: RefreshInput, runId: string, shadowTable?: string) {
  return {
    typedSearchAttributes: childSearchAttributes(workflowInfo().typedSearchAttributes, {
      operation: 'run',
      runId,
      trigger: input.type,
    }),
    staticSummary:
      `run ${runId} of ${spoken(input.type)} ${input.operationId}` +
      (shadowTable ? ` into shadow table ${shadowTable}` : ''),
  };
}

export interface RefreshInput {
  operationId: string;
  ingestionId: string;
  type: OperationType;
  autoRun: boolean;
  /** Chosen by the API so the response and the 409s of other requests can name it up front. */
  runId: string;
  run: { parallelism: number; batchMaxFiles: number; batchMaxBytes: number };
  /** 'drop' is seed 001's literal behaviour; 'swap' (full refresh) keeps the live table until the new one is complete. */
  strategy: RefreshStrategy;
  graceSeconds: number;
  selection?: Selection;
  /**
   * swap: checks between the loaded shadow and the live table; one failing (or `"always"`) makes the
   * swap wait for POST /operations/{id}/approve or /abort, or abort after `approvalTimeoutSeconds`.
   */
  checks?: SwapChecks | 'always';
  approvalTimeoutSeconds?: number;
  /** Set by the workflow when it starts: the run loads the files modified by then (a snapshot). */
  modifiedBefore?: string;
}

/** The approval gate of a swap with checks: open while the operation is `awaiting_approval`. */
interface Approval {
  awaiting: boolean;
  decision?: ApprovalDecision & { approved: boolean };
}

/**
 * Seed 001's refresh modes as one durable sequence of steps: drop the table, clear the history
 * (full refresh only), start the run. Each step is an activity recorded on the operation as it
 * completes; a failure part-way is retried where it stopped, never from the start. The workflow
 * holds the ingestion's workflow id until the run it started has finished, so nothing else mutates
 * the ingestion in between.
 */
export async function refreshWorkflow(request: RefreshInput): Promise<{ runId: string | null }> {
  // The source as it is now: files that arrive while the refresh loads are the next run's. A file
  // written just before the request is in it, even where the store keeps times to the second only
  // (then one written within the same second after it may be too: whole, never half). A patch:
  // refreshes started before it replay without one.
  const input: RefreshInput = patched('refresh-source-snapshot')
    ? { ...request, modifiedBefore: new Date(Date.now()).toISOString() }
    : request;
  const { operationId, ingestionId } = input;
  const mode = refreshModes[input.type];
  const steps: OperationStep[] = [];
  let prepared = false;
  let runId: string | null = null;
  setHandler(operationPreparedUpdate, async (): Promise<OperationPrepared> => {
    await condition(() => prepared);
    return { steps, runId };
  });
  setHandler(operationStepsQuery, () => ({ steps, runId }));
  const approval: Approval = { awaiting: false };
  const decide = (approved: boolean) => (d: ApprovalDecision) => {
    approval.decision = { ...d, approved };
  };
  const onlyWhileAwaiting = (_d: ApprovalDecision) => {
    if (!approval.awaiting || approval.decision) throw new Error('the operation is not awaiting approval');
  };
  setHandler(approveOperationUpdate, decide(true), { validator: onlyWhileAwaiting });
  setHandler(abortOperationUpdate, decide(false), { validator: onlyWhileAwaiting });

  const record = async (step: Omit<OperationStep, 'timestamp' | 'status'>, id?: string) => {
    const full: OperationStep = { ...step, status: 'success', timestamp: new Date(Date.now()).toISOString() };
    steps.push(full);
    await short.recordStep({ operationId, step: full, runId: id });
  };

  try {
    if (input.strategy === 'swap') {
      const aborted = await swapRefresh(input, record, approval, () => {
        runId = input.runId;
        prepared = true;
      });
      if (aborted !== undefined) {
        await short.finishOperation({ operationId, status: 'cancelled', error: aborted });
        await notifyWebhooks({ kind: 'operation', operationId });
        return { runId };
      }
      await short.finishOperation({ operationId, status: 'success' });
      await notifyWebhooks({ kind: 'operation', operationId });
      return { runId };
    }

    if (mode.table === 'remove_selected_rows') {
      const removed = await long.removeSelectedFiles({ ingestionId, selection: input.selection ?? {} });
      await record({ operation: 'rows_removed', details: { ...removed } });
    } else {
      const dropped = await short.dropTable({ ingestionId });
      await record({ operation: 'table_dropped', details: { ...dropped } });
    }

    if (mode.clearsHistory) {
      const cleared = await short.clearProcessedFiles({ ingestionId });
      await record({
        operation: 'processed_files_cleared',
        details: {
          files_cleared: cleared.filesCleared,
          oldest_file: cleared.oldestFile,
          newest_file: cleared.newestFile,
        },
      });
    }

    if (launchesRun(mode, input.autoRun)) {
      runId = input.runId;
      const child = await startChild(ingestionRunWorkflow, {
        workflowId: workflowIds.ingestionRun(ingestionId, runId),
        args: [
          { runId, ingestionId, trigger: input.type, ...input.run, modifiedBefore: input.modifiedBefore },
        ],
        ...runChildLabels(input, runId),
      });
      await record(
        { operation: 'run_triggered', details: { run_id: runId, run_url: `/api/v1/runs/${runId}` } },
        runId,
      );
      prepared = true;
      await child.result();
    }
    prepared = true;
    await short.finishOperation({ operationId, status: 'success' });
    await notifyWebhooks({ kind: 'operation', operationId });
    return { runId };
  } catch (err) {
    // Cancelled (the operation, or the run it started): recorded as such, even while cancelling.
    if (isCancellation(err) || isCancelledChild(err)) {
      await CancellationScope.nonCancellable(() =>
        short.finishOperation({ operationId, status: 'cancelled', error: 'cancelled' }),
      );
      throw err;
    }
    const message =
      err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err);
    await short.finishOperation({ operationId, status: 'failed', error: message });
    await notifyWebhooks({ kind: 'operation', operationId });
    throw ApplicationFailure.nonRetryable(`operation ${operationId} failed: ${message}`, 'OperationFailed');
  }
}

/** The run a refresh started was cancelled (its own cancel, POST /runs/{id}/cancel). */
function isCancelledChild(err: unknown): boolean {
  return err instanceof ChildWorkflowFailure && err.cause instanceof CancelledFailure;
}

type Record = (step: Omit<OperationStep, 'timestamp' | 'status'>, runId?: string) => Promise<void>;

/**
 * Zero-downtime full refresh: every file is loaded into a shadow table under its own file history
 * while readers keep using the live table; one transaction swaps them; the old version is deleted
 * by a durable timer after the grace period. A failed shadow run is discarded and the live table
 * never changes.
 */
async function swapRefresh(
  input: RefreshInput,
  record: Record,
  approval: Approval,
  onRunStarted: () => void,
): Promise<string | undefined> {
  const { ingestionId, runId } = input;
  const scope = `swap:${input.operationId}`;
  const shadowTable = `_al_${input.operationId}`.slice(0, 63);
  const child = await startChild(ingestionRunWorkflow, {
    workflowId: workflowIds.ingestionRun(ingestionId, runId),
    args: [
      {
        runId,
        ingestionId,
        trigger: 'full_refresh',
        ...input.run,
        target: { scope, table: shadowTable },
        modifiedBefore: input.modifiedBefore,
      },
    ],
    ...runChildLabels(input, runId, shadowTable),
  });
  await record(
    {
      operation: 'run_triggered',
      details: { run_id: runId, run_url: `/api/v1/runs/${runId}`, shadow_table: shadowTable },
    },
    runId,
  );
  onRunStarted();
  let summary: Awaited<ReturnType<typeof child.result>>;
  try {
    summary = await child.result();
  } catch (err) {
    await CancellationScope.nonCancellable(() => short.discardShadow({ ingestionId, shadowTable, scope }));
    throw err;
  }
  // Only a complete new version replaces the live one: with files failing, readers keep the old.
  if (summary.status !== 'SUCCESS') {
    await short.discardShadow({ ingestionId, shadowTable, scope });
    throw ApplicationFailure.nonRetryable(
      `shadow run ${runId} ended ${summary.status} (${summary.filesFailed} files failed); live table kept`,
      'ShadowRunIncomplete',
    );
  }
  if (input.checks !== undefined) {
    const aborted = await checkBeforeSwap(input, record, approval, { shadowTable, scope });
    if (aborted !== undefined) return aborted;
  }
  const swapped = await swap.swapTables({
    operationId: input.operationId,
    ingestionId,
    shadowTable,
    scope,
    graceSeconds: input.graceSeconds,
  });
  await record({
    operation: 'table_swapped',
    details: {
      table_name: swapped.liveTable,
      previous_version: swapped.oldTable,
      rows_loaded: summary.recordsWritten,
      // Grants, policies, indexes, comments, defaults and views the new version took over.
      ...(swapped.carriedOver ? { carried_over: swapped.carriedOver } : {}),
    },
  });
  if (swapped.deletion) {
    await armPendingDeletion({
      id: swapped.deletion.id,
      dueAt: swapped.deletion.dueAt,
      trigger: input.type,
      summary: `drop ${swapped.oldTable} at ${swapped.deletion.dueAt} (the version ${input.operationId} replaced)`,
    });
    await record({
      operation: 'deletion_scheduled',
      details: {
        table_name: swapped.oldTable,
        deletion_id: swapped.deletion.id,
        due_at: swapped.deletion.dueAt,
      },
    });
  }
}

/**
 * Checks before the swap: the loaded shadow measured against the live table; with a check failing
 * (or `"always"`) the operation waits in `awaiting_approval` for an approve or an abort, or aborts
 * once the approval timeout has passed. An abort (or a cancel while waiting) discards the shadow and
 * keeps the live table. Returns why the swap was aborted, or undefined to swap.
 */
async function checkBeforeSwap(
  input: RefreshInput,
  record: Record,
  approval: Approval,
  shadow: { shadowTable: string; scope: string },
): Promise<string | undefined> {
  const { ingestionId, operationId } = input;
  const measured = await short.measureShadow({
    ingestionId,
    shadowTable: shadow.shadowTable,
    runId: input.runId,
  });
  const failed =
    input.checks === 'always'
      ? ['every swap of this refresh waits for approval ("checks": "always")']
      : failedChecks(input.checks ?? {}, measured);
  await record({ operation: 'checks_evaluated', details: { ...measured, failed } });
  if (failed.length === 0) return undefined;

  const timeoutSeconds = input.approvalTimeoutSeconds ?? 86_400;
  approval.awaiting = true;
  let decided: boolean;
  try {
    await short.setAwaitingApproval({ operationId, awaiting: true });
    decided = await condition(() => approval.decision !== undefined, timeoutSeconds * 1000);
  } catch (err) {
    await CancellationScope.nonCancellable(() => short.discardShadow({ ingestionId, ...shadow }));
    throw err;
  }
  approval.awaiting = false;
  const d = approval.decision;
  if (decided && d?.approved) {
    await short.setAwaitingApproval({ operationId, awaiting: false });
    await record({ operation: 'swap_approved', details: { by: d.by, reason: d.reason ?? null } });
    return undefined;
  }
  const why =
    decided && d
      ? `swap aborted by ${d.by}${d.reason ? `: ${d.reason}` : ''}; live table kept`
      : `swap not approved within ${timeoutSeconds} s; live table kept`;
  await short.discardShadow({ ingestionId, ...shadow });
  await record({ operation: 'swap_aborted', details: { reason: why, failed } });
  return why;
}

/** Read-only discovery for dry runs and impact figures; runs beside any mutating workflow. */
export async function estimateImpactWorkflow(input: {
  ingestionId: string;
  selection?: Selection;
}): Promise<SourceImpact> {
  if (input.selection)
    return long.estimateReprocess({ ingestionId: input.ingestionId, selection: input.selection });
  return long.estimateImpact({ ingestionId: input.ingestionId });
}
