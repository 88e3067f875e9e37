import { randomUUID } from 'node:crypto';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import type { SourceImpact } from '../activities/estimate-impact.js';
import type { Selection } from '../activities/reprocess.js';
import type { Principal } from '../auth/tokens.js';
import type { OperationStep } from '../db/schema/index.js';
import { AppError } from '../domain/errors.js';
import { newId } from '../lib/ids.js';
import {
  launchesRun,
  type OperationType,
  plannedSteps,
  type RefreshStrategy,
  refreshModes,
  type StepName,
} from '../refresh/modes.js';
import { type Plan, type PlanOptions, planChanges, planLifetimeSeconds } from '../refresh/plan.js';
import { workflowIds } from '../temporal/ids.js';
import { spoken } from '../temporal/search-attributes.js';
import { operationPreparedUpdate, operationStepsQuery } from '../workflows/messages.js';
import { estimateImpactWorkflow, type RefreshInput, refreshWorkflow } from '../workflows/refresh.js';
import type { ServiceDeps } from './deps.js';
import { computeImpact, type Impact, impactNotes, impactWarnings } from './impact.js';
import { refuseIfBusy, startExclusive } from './operations.js';

export interface RefreshRequest {
  type: OperationType;
  ingestionId: string;
  autoRun: boolean;
  dryRun: boolean;
  strategy: RefreshStrategy;
  graceSeconds?: number;
  /** reprocess only: which loaded files to load again. */
  selection?: Selection;
  /** A dry run's plan: execute exactly what it previewed, or be refused (409 PLAN_STALE). */
  planId?: string;
  /** swap: checks before the swap; failing ones wait for approval (RefreshInput's). */
  checks?: RefreshInput['checks'];
  principal: Principal;
  /**
   * Part of a batch refresh: the batch checked the rate limit and the large-operation rule once for
   * all its members, and the audit rows carry its id so the batch counts as one request.
   */
  batchId?: string;
}

export interface PlannedStep {
  operation: StepName;
  details: Record<string, unknown>;
}

interface Assessment {
  ingestionId: string;
  timestamp: string;
  impact: Impact;
  warnings: string[];
  notes: string[];
}

/** What a refresh request did: previewed, started (or finished), or stalled on a failing step. */
export type RefreshResult =
  | (Assessment & {
      kind: 'dry_run';
      wouldPerform: PlannedStep[];
      executePath: string;
      /** Absent where the estimate takes no snapshot (reprocess). */
      plan?: { id: string; expiresAt: string };
    })
  | (Assessment & {
      kind: 'started';
      operationId: string;
      runId: string | null;
      steps: OperationStep[];
    })
  | (Assessment & {
      kind: 'partial_failure';
      operationId: string;
      runId: string | null;
      steps: OperationStep[];
      pendingStep: StepName | undefined;
      failure: string | null;
      /** What the retrying step last failed with, for the log only. */
      rawFailure: string | null;
    });

/** Real discovery, in a worker: the API never lists a bucket itself. */
export async function estimateSource(
  deps: Pick<ServiceDeps, 'temporal' | 'taskQueue'>,
  ingestionId: string,
  selection?: Selection,
): Promise<SourceImpact> {
  return deps.temporal.workflow.execute(estimateImpactWorkflow, {
    workflowId: workflowIds.estimate(ingestionId, randomUUID()),
    taskQueue: deps.taskQueue,
    args: [{ ingestionId, selection }],
  });
}

function wouldPerform(
  req: RefreshRequest,
  src: SourceImpact,
  impact: Impact,
  graceSeconds: number,
): PlannedStep[] {
  const mode = refreshModes[req.type];
  const details: Record<StepName, () => Record<string, unknown>> = {
    table_swapped: () => ({
      table_name: src.table.table_name,
      readers_interrupted: false,
      ...(src.swap && { ...src.swap, would_be_refused: src.swap.blocked_by.length > 0 }),
    }),
    rows_removed: () => ({ table_name: src.table.table_name, files_selected: impact.files_to_process }),
    deletion_scheduled: () => ({
      previous_version_of: src.table.table_name,
      grace_period_seconds: graceSeconds,
    }),
    table_dropped: () => ({
      table_name: src.table.table_name,
      table_exists: src.table.table_existed,
      current_size_gb: src.table.table_size_gb ?? 0,
      current_row_count: src.table.row_count ?? 0,
    }),
    processed_files_cleared: () => ({
      files_to_clear: src.historyFiles,
      date_range: src.historyOldest ? `${src.historyOldest} to ${src.historyNewest}` : null,
    }),
    run_triggered: () => ({
      files_to_process: impact.files_to_process,
      new_files_only: mode.run?.files === 'new' && mode.table === 'drop',
      data_size_gb: impact.estimated_data_size_gb,
    }),
  };
  return plannedSteps(mode, req.strategy, req.autoRun).map((operation) => ({
    operation,
    details: details[operation](),
  }));
}

/** What a swap changes for the table's readers beyond its rows: views re-created, or a refusal ahead. */
function swapWarnings(req: RefreshRequest, src: SourceImpact): string[] {
  const swap = src.swap;
  if (req.strategy !== 'swap' || !swap) return [];
  const table = src.table.table_name;
  const w: string[] = [];
  if (swap.blocked_by.length > 0) {
    w.push(
      `SWAP WILL BE REFUSED after the new version is loaded (${table} is kept as it is, the new load discarded): ${swap.blocked_by.join('; ')}`,
    );
  }
  const rebound = swap.views_rebound.map(
    (v) =>
      `${v.view} (reads ${Object.entries(v.needs_columns)
        .map(([column, type]) => `${column} ${type}`)
        .join(', ')})`,
  );
  if (rebound.length > 0) {
    const through =
      swap.views_through.length > 0 ? `; views built on them follow: ${swap.views_through.join(', ')}` : '';
    w.push(
      `Views reading ${table} will be re-created on the new version: ${rebound.join('; ')}${through}. If the new version lacks one of those columns or changes its type, the swap is refused`,
    );
  }
  if (swap.not_carried_over.length > 0)
    w.push(`Not carried over to the new version by the swap: ${swap.not_carried_over.join('; ')}`);
  return w;
}

async function audit(
  deps: ServiceDeps,
  req: RefreshRequest,
  fields: { operationId?: string; impact: Impact; result: string; plan?: Plan },
): Promise<void> {
  const detail = {
    ...fields.impact,
    ...(req.batchId ? { batch_id: req.batchId } : {}),
    ...(fields.plan ? { plan: fields.plan } : {}),
  };
  await deps.sql`
    insert into autoloader.audit_events (tenant_id, subject, action, ingestion_id, operation_id, dry_run, impact, result)
    values (${req.principal.tenantId}, ${req.principal.subject}, ${req.type}, ${req.ingestionId},
            ${fields.operationId ?? null}, ${req.dryRun}, ${deps.sql.json(detail as never)}, ${fields.result})`;
}

/** The options a dry run previews and its plan is made for. */
const planOptions = (req: RefreshRequest): PlanOptions => ({
  strategy: req.strategy,
  auto_run: req.autoRun,
  ...(req.selection ? { selection: req.selection } : {}),
});

/**
 * Executing with a plan: the dry run that made it (same tenant, ingestion and operation), not
 * expired — checked before the source is listed, so a bad plan id costs no listing. The plan lives
 * in the dry run's audit event, so every API instance finds it.
 */
async function findPlan(deps: ServiceDeps, req: RefreshRequest): Promise<Plan> {
  const [row] = await deps.sql<{ plan: Plan }[]>`
    select impact->'plan' as plan from autoloader.audit_events
    where tenant_id = ${req.principal.tenantId} and ingestion_id = ${req.ingestionId}
      and action = ${req.type} and dry_run and impact->'plan'->>'id' = ${req.planId ?? ''}`;
  if (!row)
    throw new AppError(
      'VALIDATION_ERROR',
      `Invalid body: plan_id: no dry run of this ${refreshModes[req.type].title.toLowerCase()} on this ingestion made this plan`,
      { field: 'plan_id' },
    );
  const { plan } = row;
  if (new Date(plan.expires_at).getTime() <= Date.now())
    throw new AppError('PLAN_STALE', `The plan expired at ${plan.expires_at}; make a new dry run`, {
      plan_id: plan.id,
      changes: [],
    });
  return plan;
}

/** Nothing the plan saw changed since, else 409 PLAN_STALE listing what did. */
function checkPlan(plan: Plan, req: RefreshRequest, src: SourceImpact): void {
  if (!src.snapshot) return;
  const changes = planChanges(plan, { options: planOptions(req), snapshot: src.snapshot });
  if (changes.length > 0)
    throw new AppError(
      'PLAN_STALE',
      `What the plan previewed has changed (${changes.map((c) => c.what).join(', ')}); make a new dry run`,
      { plan_id: plan.id, changes },
    );
}

/**
 * Seed 001: at most N full refreshes per user per hour, counted from the audit log (shared by every
 * API instance). A refresh of several ingestions (a batch, an object-store connection's data
 * refresh) is audited when accepted with `operation: "full_refresh"` and its `batch_id`, and its
 * members' events share that id: the whole counts once (the contract).
 */
export async function checkRateLimit(
  deps: Pick<ServiceDeps, 'sql' | 'refresh'>,
  req: Pick<RefreshRequest, 'type' | 'principal'>,
): Promise<void> {
  if (req.type !== 'full_refresh') return;
  const [row] = await deps.sql<{ n: number; oldest: Date | null }[]>`
    select count(distinct coalesce(impact->>'batch_id', id::text))::int as n, min(created_at) as oldest
    from autoloader.audit_events
    where subject = ${req.principal.subject} and tenant_id = ${req.principal.tenantId}
      and (action = 'full_refresh' or impact->>'operation' = 'full_refresh')
      and not dry_run and created_at > now() - interval '1 hour'`;
  if ((row?.n ?? 0) >= deps.refresh.rateLimitPerHour) {
    const retryAfter = row?.oldest
      ? Math.max(1, Math.ceil((row.oldest.getTime() + 3_600_000 - Date.now()) / 1000))
      : 3600;
    throw new AppError(
      'RATE_LIMITED',
      `At most ${deps.refresh.rateLimitPerHour} full refreshes per hour per user`,
      {
        help: `Retry in ${retryAfter} s`,
        retry_after_seconds: retryAfter,
      },
    );
  }
}

/** Seed 001: an operation estimated above the threshold needs a dry run (by the same user, within the hour) first. */
async function checkLargeOperation(deps: ServiceDeps, req: RefreshRequest, impact: Impact): Promise<void> {
  if (impact.estimated_cost_usd <= deps.refresh.largeOperationUsd) return;
  const [row] = await deps.sql<{ n: number }[]>`
    select count(*)::int as n from autoloader.audit_events
    where subject = ${req.principal.subject} and ingestion_id = ${req.ingestionId} and action = ${req.type}
      and dry_run and created_at > now() - interval '1 hour'`;
  if ((row?.n ?? 0) === 0) {
    throw new AppError(
      'DRY_RUN_REQUIRED',
      `Operation estimated at $${impact.estimated_cost_usd.toFixed(2)}. Run with dry_run=true first to review.`,
      { help: `Operations above $${deps.refresh.largeOperationUsd} need a dry run within the hour before` },
    );
  }
}

/** What the Temporal UI's list shows: "full refresh (swap) of raw.events — 1,247 files". */
function operationSummary(req: RefreshRequest, table: string, files: number | undefined): string {
  const strategy = req.type === 'full_refresh' && req.strategy === 'swap' ? ' (swap)' : '';
  const count = files === undefined ? '' : ` — ${files.toLocaleString('en-US')} files`;
  return `${spoken(req.type)}${strategy} of ${table}${count}`;
}

export async function requestRefresh(deps: ServiceDeps, req: RefreshRequest): Promise<RefreshResult> {
  const mode = refreshModes[req.type];
  const conflictDetail = `Cannot ${mode.title.toLowerCase()} while an operation runs on this ingestion`;
  if (!req.dryRun) await refuseIfBusy(deps.temporal, req.ingestionId, conflictDetail);
  const plan = req.planId !== undefined && !req.dryRun ? await findPlan(deps, req) : undefined;
  const src = await estimateSource(deps, req.ingestionId, req.selection);
  const impact = computeImpact(req.type, req.autoRun, src, deps.refresh);
  const assessment: Assessment = {
    ingestionId: req.ingestionId,
    timestamp: new Date().toISOString(),
    impact,
    warnings: [...impactWarnings(req.type, impact, src), ...swapWarnings(req, src)],
    notes: impactNotes(req.type, req.autoRun, impact, src),
  };
  const graceSeconds = req.graceSeconds ?? deps.refresh.swapGraceSeconds;

  if (req.dryRun) {
    const plan: Plan | undefined = src.snapshot && {
      id: newId('plan'),
      expires_at: new Date(Date.now() + planLifetimeSeconds * 1000).toISOString(),
      options: planOptions(req),
      snapshot: src.snapshot,
    };
    await audit(deps, req, { impact, result: 'dry_run', plan });
    return {
      ...assessment,
      kind: 'dry_run',
      wouldPerform: wouldPerform(req, src, impact, graceSeconds),
      executePath: mode.path.replace('{id}', req.ingestionId),
      ...(plan ? { plan: { id: plan.id, expiresAt: plan.expires_at } } : {}),
    };
  }

  // A plan is the proof that a dry run was seen: it replaces the large-operation rule's check.
  if (plan) checkPlan(plan, req, src);
  if (!req.batchId) {
    await checkRateLimit(deps, req);
    if (!plan) await checkLargeOperation(deps, req, impact);
  }

  const operationId = newId('op');
  const runId = newId('run');
  const withRun = launchesRun(mode, req.autoRun);
  await deps.sql`
    insert into autoloader.operations (id, ingestion_id, tenant_id, type, strategy, status, requested_by, auto_run, workflow_id, impact, warnings, notes)
    values (${operationId}, ${req.ingestionId}, ${req.principal.tenantId}, ${req.type}, ${req.strategy}, 'running', ${req.principal.subject},
            ${req.autoRun}, ${workflowIds.ingestion(req.ingestionId)}, ${deps.sql.json(impact as never)},
            ${deps.sql.json(assessment.warnings)}, ${deps.sql.json(assessment.notes)})`;
  let handle: Awaited<ReturnType<typeof startExclusive<typeof refreshWorkflow>>>;
  try {
    handle = await startExclusive(deps, req.ingestionId, refreshWorkflow, {
      args: [
        {
          operationId,
          ingestionId: req.ingestionId,
          type: req.type,
          autoRun: req.autoRun,
          runId,
          run: deps.runDefaults,
          strategy: req.strategy,
          graceSeconds,
          selection: req.selection,
          ...(req.checks !== undefined
            ? { checks: req.checks, approvalTimeoutSeconds: deps.refresh.approvalTimeoutSeconds }
            : {}),
        },
      ],
      memo: { operation: req.type, operationId, ...(withRun ? { runId } : {}) },
      describe: (table) => operationSummary(req, table, withRun ? impact.files_to_process : undefined),
      conflictDetail,
    });
  } catch (err) {
    await deps.sql`delete from autoloader.operations where id = ${operationId}`;
    throw err;
  }
  await audit(deps, req, { operationId, impact, result: 'accepted' });

  // With a run, answer once it has started (the workflow holds the ingestion until the run ends);
  // without one, answer when the whole operation has finished, so the next request finds it idle.
  const done: Promise<
    { kind: 'prepared'; steps: OperationStep[]; runId: string | null } | { kind: 'ended' }
  > = withRun
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
  if (prepared.kind === 'prepared') {
    return {
      ...assessment,
      kind: 'started',
      operationId,
      runId: prepared.runId,
      steps: prepared.steps,
    };
  }
  if (prepared.kind === 'ended') {
    // Ended before its first steps were done: a refusal the user can act on is answered as such.
    const [op] = await deps.sql<
      { error: string | null }[]
    >`select error from autoloader.operations where id = ${operationId}`;
    if (op?.error && /cannot be dropped: /.test(op.error)) {
      throw new AppError('DEPENDENT_OBJECTS', op.error, {
        operation_id: operationId,
        help: 'Drop or change the objects that depend on the table, or use strategy "swap"',
      });
    }
  }
  return stalled(deps, req, operationId, assessment);
}

/**
 * The operation has not finished its preparatory steps in time: what was done, which step is failing
 * and why (from Temporal's record of the retrying activity). It resumes by itself when the fault clears.
 */
async function stalled(
  deps: ServiceDeps,
  req: RefreshRequest,
  operationId: string,
  assessment: Assessment,
): Promise<RefreshResult> {
  const handle = deps.temporal.workflow.getHandle(workflowIds.ingestion(req.ingestionId));
  const [state, desc] = await Promise.all([handle.query(operationStepsQuery), handle.describe()]);
  // The raw failure (a SQL error, a host name) is for the operator's log, not the response.
  const raw = desc.raw.pendingActivities?.find((a) => a.lastFailure)?.lastFailure?.message ?? null;
  const failure =
    raw === null
      ? null
      : 'a backing service (the state database, Temporal or the store) is failing; the step is retried';
  const done = new Set(state.steps.map((s) => s.operation));
  const pendingStep = plannedSteps(refreshModes[req.type], req.strategy, req.autoRun).find(
    (s) => !done.has(s),
  );
  await deps.sql`update autoloader.operations set status = 'partial_failure' where id = ${operationId} and status = 'running'`;
  return {
    ...assessment,
    kind: 'partial_failure',
    operationId,
    runId: state.runId,
    steps: state.steps,
    pendingStep,
    failure,
    rawFailure: raw,
  };
}

async function recordedSteps(deps: ServiceDeps, operationId: string): Promise<OperationStep[]> {
  const [op] = await deps.sql<
    { steps: OperationStep[] }[]
  >`select steps from autoloader.operations where id = ${operationId}`;
  return op?.steps ?? [];
}
