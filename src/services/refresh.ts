import { randomUUID } from 'node:crypto';
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
} from '@temporalio/client';
import type { SourceImpact } from '../activities/estimate-impact.js';
import type { Selection } from '../activities/reprocess.js';
import { ApiError, errors } from '../api/errors.js';
import type { Principal } from '../auth/tokens.js';
import type { OperationStep, OperationType } from '../db/schema/index.js';
import { newId } from '../lib/ids.js';
import { operationPreparedUpdate, operationStepsQuery } from '../workflows/messages.js';
import { estimateImpactWorkflow, refreshWorkflow } from '../workflows/refresh.js';
import { type CostModel, computeImpact, type Impact, impactNotes, impactWarnings } from './impact.js';
import {
  currentOperationId,
  ingestionWorkflowId,
  type OperationDeps,
  type OperationMemo,
} from './operations.js';

export interface RefreshSettings extends CostModel {
  largeOperationUsd: number;
  rateLimitPerHour: number;
  responseWaitMs: number;
  swapGraceSeconds: number;
}

export interface RefreshDeps extends OperationDeps {
  refresh: RefreshSettings;
}

export interface RefreshRequest {
  type: OperationType;
  ingestionId: string;
  table: string;
  autoRun: boolean;
  dryRun: boolean;
  strategy: 'drop' | 'swap';
  graceSeconds?: number;
  /** reprocess only: which loaded files to load again. */
  selection?: Selection;
  principal: Principal;
}

/** The steps each mode performs, in order: what a dry run lists and what a partial failure resumes. */
const plannedSteps: Record<OperationType, string[]> = {
  full_refresh: ['table_dropped', 'processed_files_cleared', 'run_triggered'],
  fresh_start: ['table_dropped', 'run_triggered'],
  drop_table: ['table_dropped'],
  reprocess: ['rows_removed', 'run_triggered'],
};

const swapSteps = ['run_triggered', 'table_swapped', 'deletion_scheduled'];
const stepsOf = (req: RefreshRequest) => (req.strategy === 'swap' ? swapSteps : plannedSteps[req.type]);

const titles: Record<OperationType, string> = {
  full_refresh: 'Full refresh',
  fresh_start: 'Fresh start',
  drop_table: 'Drop table',
  reprocess: 'Reprocess',
};

const paths: Record<OperationType, string> = {
  full_refresh: 'POST /api/v1/ingestions/{id}/full-refresh',
  fresh_start: 'POST /api/v1/ingestions/{id}/fresh-start',
  drop_table: 'DELETE /api/v1/ingestions/{id}/table',
  reprocess: 'POST /api/v1/ingestions/{id}/reprocess',
};

/** Real discovery, in a worker: the API never lists a bucket itself. */
export async function estimateSource(
  deps: OperationDeps,
  ingestionId: string,
  selection?: Selection,
): Promise<SourceImpact> {
  return deps.temporal.workflow.execute(estimateImpactWorkflow, {
    workflowId: `${ingestionWorkflowId(ingestionId)}/estimate/${randomUUID()}`,
    taskQueue: deps.taskQueue,
    args: [{ ingestionId, selection }],
  });
}

function wouldPerform(req: RefreshRequest, src: SourceImpact, impact: Impact, graceSeconds: number) {
  const { type, autoRun } = req;
  const steps = stepsOf(req).filter((s) => s !== 'run_triggered' || autoRun);
  return steps.map((operation) => {
    if (operation === 'table_swapped') {
      return { operation, details: { table_name: src.table.table_name, readers_interrupted: false } };
    }
    if (operation === 'rows_removed') {
      return {
        operation,
        details: { table_name: src.table.table_name, files_selected: impact.files_to_process },
      };
    }
    if (operation === 'deletion_scheduled') {
      return {
        operation,
        details: { previous_version_of: src.table.table_name, grace_period_seconds: graceSeconds },
      };
    }
    if (operation === 'table_dropped') {
      return {
        operation,
        details: {
          table_name: src.table.table_name,
          table_exists: src.table.table_existed,
          current_size_gb: src.table.table_size_gb ?? 0,
          current_row_count: src.table.row_count ?? 0,
        },
      };
    }
    if (operation === 'processed_files_cleared') {
      return {
        operation,
        details: {
          files_to_clear: src.historyFiles,
          date_range: src.historyOldest ? `${src.historyOldest} to ${src.historyNewest}` : null,
        },
      };
    }
    return {
      operation,
      details: {
        files_to_process: impact.files_to_process,
        new_files_only: type === 'fresh_start',
        data_size_gb: impact.estimated_data_size_gb,
      },
    };
  });
}

async function audit(
  deps: OperationDeps,
  req: RefreshRequest,
  fields: { operationId?: string; impact: Impact; result: string },
): Promise<void> {
  await deps.sql`
    insert into autoloader.audit_events (tenant_id, subject, action, ingestion_id, operation_id, dry_run, impact, result)
    values (${req.principal.tenantId}, ${req.principal.subject}, ${req.type}, ${req.ingestionId},
            ${fields.operationId ?? null}, ${req.dryRun}, ${deps.sql.json(fields.impact as never)}, ${fields.result})`;
}

/** Seed 001: at most N full refreshes per user per hour, counted from the audit log (shared by every API instance). */
async function checkRateLimit(deps: RefreshDeps, req: RefreshRequest): Promise<void> {
  if (req.type !== 'full_refresh') return;
  const [row] = await deps.sql<{ n: number; oldest: Date | null }[]>`
    select count(*)::int as n, min(created_at) as oldest from autoloader.audit_events
    where subject = ${req.principal.subject} and tenant_id = ${req.principal.tenantId}
      and action = 'full_refresh' and not dry_run and created_at > now() - interval '1 hour'`;
  if ((row?.n ?? 0) >= deps.refresh.rateLimitPerHour) {
    const retryAfter = row?.oldest
      ? Math.max(1, Math.ceil((row.oldest.getTime() + 3_600_000 - Date.now()) / 1000))
      : 3600;
    throw new ApiError(
      429,
      'RATE_LIMITED',
      `At most ${deps.refresh.rateLimitPerHour} full refreshes per hour per user`,
      {
        help: `Retry in ${retryAfter} s`,
        retry_after_seconds: retryAfter,
        headers: { 'Retry-After': String(retryAfter) },
      },
    );
  }
}

/** Seed 001: an operation estimated above the threshold needs a dry run (by the same user, within the hour) first. */
async function checkLargeOperation(deps: RefreshDeps, req: RefreshRequest, impact: Impact): Promise<void> {
  if (impact.estimated_cost_usd <= deps.refresh.largeOperationUsd) return;
  const [row] = await deps.sql<{ n: number }[]>`
    select count(*)::int as n from autoloader.audit_events
    where subject = ${req.principal.subject} and ingestion_id = ${req.ingestionId} and action = ${req.type}
      and dry_run and created_at > now() - interval '1 hour'`;
  if ((row?.n ?? 0) === 0) {
    throw new ApiError(
      400,
      'DRY_RUN_REQUIRED',
      `Operation estimated at $${impact.estimated_cost_usd.toFixed(2)}. Run with dry_run=true first to review.`,
      { help: `Operations above $${deps.refresh.largeOperationUsd} need a dry run within the hour before` },
    );
  }
}

export type RefreshOutcome = { status: 200 | 202 | 500; body: Record<string, unknown> };

/**
 * Answers 409 before the (possibly slow) discovery when something already runs. Only a fast path:
 * the guarantee is the workflow-id uniqueness at start below.
 */
async function refuseIfBusy(deps: RefreshDeps, req: RefreshRequest): Promise<void> {
  try {
    const desc = await deps.temporal.workflow.getHandle(ingestionWorkflowId(req.ingestionId)).describe();
    if (desc.status.name !== 'RUNNING') return;
    const memo = (desc.memo ?? {}) as Partial<OperationMemo>;
    throw errors.runInProgress(
      memo.runId ?? memo.operationId,
      `Cannot ${titles[req.type].toLowerCase()} while an operation runs on this ingestion`,
    );
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return;
    throw err;
  }
}

export async function requestRefresh(deps: RefreshDeps, req: RefreshRequest): Promise<RefreshOutcome> {
  if (!req.dryRun) await refuseIfBusy(deps, req);
  const src = await estimateSource(deps, req.ingestionId, req.selection);
  const impact = computeImpact(req.type, req.autoRun, src, deps.refresh);
  const warnings = impactWarnings(req.type, impact, src);
  const notes = impactNotes(req.type, req.autoRun, impact, src);
  const timestamp = new Date().toISOString();

  if (req.dryRun) {
    await audit(deps, req, { impact, result: 'dry_run' });
    return {
      status: 200,
      body: {
        status: 'dry_run',
        message: 'Preview of operations (not executed)',
        ingestion_id: req.ingestionId,
        timestamp,
        would_perform: wouldPerform(req, src, impact, req.graceSeconds ?? deps.refresh.swapGraceSeconds),
        impact,
        warnings,
        notes,
        next_steps: {
          to_proceed: `${paths[req.type].replace('{id}', req.ingestionId)} with confirm=true`,
          to_cancel: 'No action needed',
        },
      },
    };
  }

  await checkRateLimit(deps, req);
  await checkLargeOperation(deps, req, impact);

  const operationId = newId('op');
  const runId = newId('run');
  const workflowId = ingestionWorkflowId(req.ingestionId);
  await deps.sql`
    insert into autoloader.operations (id, ingestion_id, tenant_id, type, strategy, status, requested_by, auto_run, workflow_id, impact, warnings, notes)
    values (${operationId}, ${req.ingestionId}, ${req.principal.tenantId}, ${req.type}, ${req.strategy}, 'running', ${req.principal.subject},
            ${req.autoRun}, ${workflowId}, ${deps.sql.json(impact as never)}, ${deps.sql.json(warnings)}, ${deps.sql.json(notes)})`;
  let handle: Awaited<ReturnType<typeof deps.temporal.workflow.start<typeof refreshWorkflow>>>;
  try {
    handle = await deps.temporal.workflow.start(refreshWorkflow, {
      workflowId,
      taskQueue: deps.taskQueue,
      args: [
        {
          operationId,
          ingestionId: req.ingestionId,
          type: req.type,
          autoRun: req.autoRun,
          runId,
          run: deps.runDefaults,
          strategy: req.strategy,
          graceSeconds: req.graceSeconds ?? deps.refresh.swapGraceSeconds,
          selection: req.selection,
        },
      ],
      memo: {
        operation: req.type,
        operationId,
        ...(req.autoRun && req.type !== 'drop_table' ? { runId } : {}),
      } satisfies OperationMemo,
      workflowIdConflictPolicy: 'FAIL',
    });
  } catch (err) {
    await deps.sql`delete from autoloader.operations where id = ${operationId}`;
    if (err instanceof WorkflowExecutionAlreadyStartedError) {
      throw errors.runInProgress(
        await currentOperationId(deps.temporal, req.ingestionId),
        `Cannot ${titles[req.type].toLowerCase()} while an operation runs on this ingestion`,
      );
    }
    throw err;
  }
  await audit(deps, req, { operationId, impact, result: 'accepted' });

  // With a run, answer once it has started (the workflow holds the ingestion until the run ends);
  // without one, answer when the whole operation has finished, so the next request finds it idle.
  const launchesRun = req.type !== 'drop_table' && req.autoRun;
  const done: Promise<
    { kind: 'prepared'; steps: OperationStep[]; runId: string | null } | { kind: 'ended' }
  > = launchesRun
    ? handle.executeUpdate(operationPreparedUpdate).then(
        (p) => ({ kind: 'prepared' as const, ...p }),
        (err: unknown) => {
          if (err instanceof WorkflowUpdateFailedError) return { kind: 'ended' as const };
          throw err;
        },
      )
    : handle.result().then(
        async () => ({
          kind: 'prepared' as const,
          steps: await recordedSteps(deps, operationId),
          runId: null,
        }),
        () => ({ kind: 'ended' as const }),
      );
  const prepared = await Promise.race([
    done,
    new Promise<{ kind: 'waiting' }>((resolve) =>
      setTimeout(() => resolve({ kind: 'waiting' }), deps.refresh.responseWaitMs).unref(),
    ),
  ]);

  const base = {
    ingestion_id: req.ingestionId,
    operation_id: operationId,
    operation_url: `/api/v1/operations/${operationId}`,
    timestamp,
  };
  if (prepared.kind === 'prepared') {
    const runTriggered = prepared.runId !== null;
    return {
      status: req.type === 'drop_table' ? 200 : 202,
      body: {
        status: req.type === 'drop_table' ? 'success' : 'accepted',
        message: `${titles[req.type]} ${runTriggered ? 'started: run triggered' : 'completed successfully'}`,
        ...base,
        run_id: prepared.runId,
        operations: prepared.steps,
        ...(req.type === 'drop_table' ? { details: prepared.steps[0]?.details ?? {} } : {}),
        impact,
        warnings,
        notes,
      },
    };
  }
  return partialFailure(deps, req, operationId, base, impact);
}

/**
 * The operation has not finished its preparatory steps in time: report what was done, which step is
 * failing and why (from Temporal's record of the retrying activity), and that it will resume by itself.
 */
async function partialFailure(
  deps: RefreshDeps,
  req: RefreshRequest,
  operationId: string,
  base: Record<string, unknown>,
  impact: Impact,
): Promise<RefreshOutcome> {
  const handle = deps.temporal.workflow.getHandle(ingestionWorkflowId(req.ingestionId));
  const [state, desc] = await Promise.all([handle.query(operationStepsQuery), handle.describe()]);
  const failure = desc.raw.pendingActivities?.find((a) => a.lastFailure)?.lastFailure?.message ?? null;
  const done = new Set(state.steps.map((s) => s.operation));
  const pendingName = stepsOf(req).find((s) => !done.has(s));
  const operations: OperationStep[] = [...state.steps];
  if (pendingName) {
    operations.push({
      operation: pendingName,
      status: failure ? 'failed' : 'pending',
      timestamp: new Date().toISOString(),
      details: {},
      error: failure ?? 'still in progress',
      error_code: failure ? 'DEPENDENCY_UNAVAILABLE' : null,
    });
  }
  await deps.sql`update autoloader.operations set status = 'partial_failure' where id = ${operationId} and status = 'running'`;
  const doneText = state.steps.map((s) => s.operation.replaceAll('_', ' ')).join(', ') || 'nothing done yet';
  return {
    status: 500,
    body: {
      status: 'partial_failure',
      detail: `Some operations did not complete: ${pendingName ?? 'bookkeeping'} is failing`,
      error_code: 'PARTIAL_FAILURE',
      message: 'Some operations failed',
      ...base,
      run_id: state.runId,
      operations,
      impact,
      recovery: {
        message: `${doneText}; ${pendingName ?? 'the last step'} is being retried and the operation completes by itself when the fault clears`,
        action: `Follow GET /api/v1/operations/${operationId}; nothing needs to be repeated`,
        state: doneText,
      },
    },
  };
}

async function recordedSteps(deps: OperationDeps, operationId: string): Promise<OperationStep[]> {
  const [op] = await deps.sql<
    { steps: OperationStep[] }[]
  >`select steps from autoloader.operations where id = ${operationId}`;
  return op?.steps ?? [];
}
