import { z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import type { Selection } from '../../activities/reprocess.js';
import type { OperationStep } from '../../db/schema/index.js';
import { AppError, errors } from '../../domain/errors.js';
import { type OperationType, refreshModes, refreshStrategies } from '../../refresh/modes.js';
import { requireUsableConnection } from '../../services/connections.js';
import { findIngestion } from '../../services/ingestions.js';
import { type RefreshResult, requestRefresh } from '../../services/refresh.js';
import { validationError } from '../errors.js';
import {
  commonErrors,
  conflictResponse,
  ErrorSchema,
  IdParam,
  ImpactSchema,
  jsonResponse,
  notFound,
  OperationStepSchema,
} from '../openapi.js';
import { type ApiDeps, type AppEnv, apiRoute, newRouter } from '../router.js';

const RefreshBody = z
  .strictObject({
    confirm: z.boolean().optional().describe('Must be true: these operations are destructive'),
    auto_run: z.boolean().default(true).describe('Start a run after the table is dropped'),
    dry_run: z.boolean().default(false).describe('Preview what would happen; change nothing'),
    strategy: z
      .enum(refreshStrategies)
      .default('drop')
      .describe(
        'full refresh only: "swap" builds the new table aside and swaps it in atomically (no downtime)',
      ),
    grace_period_seconds: z
      .number()
      .int()
      .min(0)
      .max(7 * 24 * 3600)
      .optional()
      .describe('swap: how long the previous version survives (default REFRESH_SWAP_GRACE_SECONDS)'),
    checks: z
      .union([
        z.literal('always'),
        z.strictObject({
          max_row_change_percent: z
            .number()
            .min(0)
            .optional()
            .describe('the largest change of the row count against the live table, in percent either way'),
          max_rejected_rows: z
            .number()
            .int()
            .min(0)
            .optional()
            .describe('the most rows the new load may reject (on_error: skip_rows)'),
          allow_dropped_columns: z
            .boolean()
            .optional()
            .describe('false: a column of the live table missing from the new version fails the check'),
          allow_type_changes: z
            .boolean()
            .optional()
            .describe('false: a column whose type changed fails the check'),
        }),
      ])
      .optional()
      .describe(
        'strategy "swap" only: checks between the loaded new version and the live table before the swap. If one fails (or with "always") the operation waits in `awaiting_approval`, its `checks_evaluated` step holding the figures and the column diff, until POST /operations/{id}/approve or /abort, or REFRESH_APPROVAL_TIMEOUT_SECONDS (24 h) aborts it. An abort discards the new version and keeps the live table',
      ),
    plan_id: z
      .string()
      .min(1)
      .max(64)
      .optional()
      .describe(
        'A dry run’s `plan_id`: run exactly what it previewed, or be refused with 409 PLAN_STALE naming what changed (the source listing, the file history, the table, or the options). Also the proof the large-operation rule asks for',
      ),
  })
  .openapi('RefreshRequest');
type RefreshBodyValue = z.infer<typeof RefreshBody>;

export const RefreshDryRun = z
  .object({
    status: z.literal('dry_run'),
    message: z.string(),
    ingestion_id: z.string(),
    timestamp: z.string(),
    would_perform: z.array(z.object({ operation: z.string(), details: z.record(z.string(), z.unknown()) })),
    impact: ImpactSchema,
    warnings: z.array(z.string()),
    notes: z.array(z.string()),
    plan_id: z
      .string()
      .optional()
      .describe(
        'Execute with it to run exactly this preview: refused (409 PLAN_STALE) if the source, the history or the table changed since (absent for reprocess)',
      ),
    plan_expires_at: z.string().optional().describe('After it, the plan is refused (409 PLAN_STALE)'),
    next_steps: z.object({ to_proceed: z.string(), to_cancel: z.string() }),
  })
  .openapi('RefreshDryRun');

export const RefreshStarted = z
  .object({
    status: z.enum(['accepted', 'success']),
    message: z.string(),
    ingestion_id: z.string(),
    operation_id: z.string(),
    operation_url: z.string(),
    timestamp: z.string(),
    run_id: z.string().nullable(),
    operations: z.array(OperationStepSchema),
    details: z.record(z.string(), z.unknown()).optional().describe('drop table: what was dropped'),
    impact: ImpactSchema,
    warnings: z.array(z.string()),
    notes: z.array(z.string()),
  })
  .openapi('RefreshStarted');

export const RefreshPartialFailure = z
  .object({
    status: z.literal('partial_failure'),
    detail: z.string(),
    error_code: z.literal('PARTIAL_FAILURE'),
    message: z.string(),
    ingestion_id: z.string(),
    operation_id: z.string(),
    operation_url: z.string(),
    timestamp: z.string(),
    run_id: z.string().nullable(),
    operations: z.array(OperationStepSchema),
    impact: ImpactSchema,
    recovery: z.object({ message: z.string(), action: z.string(), state: z.string() }),
  })
  .openapi('RefreshPartialFailure');

export const RefreshResponse = z.union([RefreshDryRun, RefreshStarted]).openapi('RefreshResponse');

export const refreshErrors = {
  ...commonErrors,
  ...notFound,
  ...conflictResponse(
    'Another operation is running (RUN_IN_PROGRESS, with current_run_id), or what the plan_id previewed has changed (PLAN_STALE, with `changes`: what, planned, now)',
  ),
  403: jsonResponse(ErrorSchema, 'Token lacks ingestion:refresh (INSUFFICIENT_PERMISSIONS)'),
  429: jsonResponse(ErrorSchema, 'Too many full refreshes this hour (RATE_LIMITED)'),
  500: jsonResponse(RefreshPartialFailure, 'A step failed part-way (PARTIAL_FAILURE, with recovery)'),
} as const;

/** The body is optional (DELETE clients often send none); when present it must be valid. */
const optionalBody = { content: { 'application/json': { schema: RefreshBody } }, required: false };

/**
 * The validated body with its defaults: without a body the validator hands over `{}` unparsed.
 * Parsing a parsed body again changes nothing.
 */
function withDefaults<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw validationError(parsed.error, 'body');
  return parsed.data;
}

/** Seed 001's bodies for each outcome, and the status each answers with. */
export function present(
  type: OperationType,
  result: RefreshResult,
): { status: 200 | 202 | 500; body: Record<string, unknown> } {
  const mode = refreshModes[type];
  const assessment = {
    impact: result.impact,
    warnings: result.warnings,
    notes: result.notes,
  };
  if (result.kind === 'dry_run') {
    return {
      status: 200,
      body: {
        status: 'dry_run' as const,
        message: 'Preview of operations (not executed)',
        ingestion_id: result.ingestionId,
        timestamp: result.timestamp,
        would_perform: result.wouldPerform,
        ...assessment,
        ...(result.plan ? { plan_id: result.plan.id, plan_expires_at: result.plan.expiresAt } : {}),
        next_steps: {
          to_proceed: result.plan
            ? `${result.executePath} with confirm=true and plan_id=${result.plan.id} (or without plan_id to run whatever the source holds then)`
            : `${result.executePath} with confirm=true`,
          to_cancel: 'No action needed',
        },
      },
    };
  }
  const base = {
    ingestion_id: result.ingestionId,
    operation_id: result.operationId,
    operation_url: `/api/v1/operations/${result.operationId}`,
    timestamp: result.timestamp,
  };
  if (result.kind === 'started') {
    const runTriggered = result.runId !== null;
    // A mode that never loads (drop table) answers as done; the others as accepted, run or not.
    const done = mode.run === null;
    return {
      status: done ? 200 : 202,
      body: {
        status: done ? ('success' as const) : ('accepted' as const),
        message: `${mode.title} ${runTriggered ? 'started: run triggered' : 'completed successfully'}`,
        ...base,
        run_id: result.runId,
        operations: result.steps,
        ...(done ? { details: result.steps[0]?.details ?? {} } : {}),
        ...assessment,
      },
    };
  }
  const operations: OperationStep[] = [...result.steps];
  if (result.pendingStep) {
    operations.push({
      operation: result.pendingStep,
      status: result.failure ? 'failed' : 'pending',
      timestamp: new Date().toISOString(),
      details: {},
      error: result.failure ?? 'still in progress',
      error_code: result.failure ? 'DEPENDENCY_UNAVAILABLE' : null,
    });
  }
  const doneText = result.steps.map((s) => s.operation.replaceAll('_', ' ')).join(', ') || 'nothing done yet';
  return {
    status: 500,
    body: {
      status: 'partial_failure' as const,
      detail: `Some operations did not complete: ${result.pendingStep ?? 'bookkeeping'} is failing`,
      error_code: 'PARTIAL_FAILURE' as const,
      message: 'Some operations failed',
      ...base,
      run_id: result.runId,
      operations,
      impact: result.impact,
      recovery: {
        message: `${doneText}; ${result.pendingStep ?? 'the last step'} is being retried and the operation completes by itself when the fault clears`,
        action: `Follow GET /api/v1/operations/${result.operationId}; nothing needs to be repeated`,
        state: doneText,
      },
    },
  };
}

/** Seed 001's refresh operations on an ingestion: full refresh, fresh start, reprocess, drop table. */
export function refreshRouter(deps: ApiDeps) {
  const router = newRouter();

  /** The status is chosen at run time (200, 202 or 500), each a documented response of the route. */
  async function refresh(
    c: Context<AppEnv>,
    type: OperationType,
    body: RefreshBodyValue,
    selection?: Selection,
  ) {
    const principal = c.get('principal');
    const ingestion = await findIngestion(deps, principal.tenantId, c.req.param('id') ?? '');
    if (body.confirm !== true) throw errors.confirmationRequired();
    await requireUsableConnection(deps, principal.tenantId, ingestion.connectionId);
    const mode = refreshModes[type];
    if (!mode.strategies.includes(body.strategy) || (body.strategy === 'swap' && !body.auto_run)) {
      throw new AppError(
        'VALIDATION_ERROR',
        'Invalid body: strategy: "swap" applies to a full refresh with auto_run',
        {
          field: 'strategy',
        },
      );
    }
    if (body.checks !== undefined && body.strategy !== 'swap')
      throw new AppError('VALIDATION_ERROR', 'Invalid body: checks: checks apply to strategy "swap"', {
        field: 'checks',
      });
    const result = await requestRefresh(deps, {
      type,
      ingestionId: ingestion.id,
      autoRun: body.auto_run,
      dryRun: body.dry_run,
      strategy: body.strategy,
      graceSeconds: body.grace_period_seconds,
      selection,
      planId: body.plan_id,
      checks: body.checks,
      principal,
    });
    if (result.kind === 'partial_failure' && result.rawFailure)
      deps.log.warn({ operationId: result.operationId, failure: result.rawFailure }, 'refresh step failing');
    return present(type, result);
  }

  const refreshRoute = (path: string, summary: string, type: OperationType) =>
    router.openapi(
      apiRoute('ingestion:refresh', {
        method: 'post',
        path,
        summary,
        request: { params: IdParam, body: optionalBody },
        responses: {
          200: jsonResponse(RefreshResponse, 'Dry run: would_perform, impact, warnings, next_steps'),
          202: jsonResponse(
            RefreshResponse,
            'Accepted: operations done so far, run_id, impact, warnings, notes',
          ),
          ...refreshErrors,
        },
      }),
      async (c) => {
        const out = await refresh(c, type, withDefaults(RefreshBody, c.req.valid('json')));
        return c.json(out.body as never, out.status);
      },
    );

  refreshRoute(
    '/ingestions/{id}/full-refresh',
    'Full refresh: drop the table, clear the file history, reload every file',
    'full_refresh',
  );
  refreshRoute(
    '/ingestions/{id}/fresh-start',
    'Fresh start: drop the table, keep the history, load only new files',
    'fresh_start',
  );
  refreshRoute('/ingestions/{id}/refresh/full', 'Alias of full-refresh (seed 000 name)', 'full_refresh');
  refreshRoute('/ingestions/{id}/refresh/new-only', 'Alias of fresh-start (seed 000 name)', 'fresh_start');

  const ReprocessBody = z
    .strictObject({
      confirm: z.boolean().optional(),
      dry_run: z.boolean().default(false),
      auto_run: z.boolean().default(true),
      pattern: z
        .string()
        .min(1)
        .max(1000)
        .optional()
        .describe('glob matched against the key below the source prefix'),
      modified_from: z.iso.datetime({ offset: true }).optional().describe('files modified at or after'),
      modified_to: z.iso.datetime({ offset: true }).optional().describe('files modified before'),
    })
    .openapi('ReprocessRequest');
  const selectionGiven = (b: z.infer<typeof ReprocessBody>) =>
    Boolean(b.pattern || b.modified_from || b.modified_to);

  router.openapi(
    apiRoute('ingestion:refresh', {
      method: 'post',
      path: '/ingestions/{id}/reprocess',
      summary: "Selective refresh: remove exactly the selected files' rows and history, then load them again",
      request: {
        params: IdParam,
        body: { content: { 'application/json': { schema: ReprocessBody } }, required: true },
      },
      responses: {
        200: jsonResponse(RefreshResponse, 'Dry run'),
        202: jsonResponse(RefreshResponse, 'Accepted: rows_removed, run_triggered'),
        ...refreshErrors,
      },
    }),
    async (c) => {
      const b = c.req.valid('json');
      // A missing confirm is reported as such, before the selection is checked.
      if (b.confirm !== true) throw errors.confirmationRequired();
      if (!selectionGiven(b)) {
        throw new AppError(
          'VALIDATION_ERROR',
          'Invalid body: pattern: select files with pattern and/or modified_from/modified_to',
          { field: 'pattern' },
        );
      }
      const out = await refresh(
        c,
        'reprocess',
        { confirm: b.confirm, dry_run: b.dry_run, auto_run: b.auto_run, strategy: 'drop' },
        { pattern: b.pattern, modifiedFrom: b.modified_from, modifiedTo: b.modified_to },
      );
      return c.json(out.body as never, out.status);
    },
  );

  router.openapi(
    apiRoute('ingestion:refresh', {
      method: 'delete',
      path: '/ingestions/{id}/table',
      summary: 'Drop the destination table only (idempotent); confirm in the body or as ?confirm=true',
      request: {
        params: IdParam,
        body: optionalBody,
        query: z.object({ confirm: z.enum(['true', 'false']).optional() }),
      },
      responses: {
        200: jsonResponse(RefreshResponse, 'Dropped, or did not exist (table_existed: false)'),
        ...refreshErrors,
      },
    }),
    async (c) => {
      const body = withDefaults(RefreshBody, c.req.valid('json'));
      if (c.req.valid('query').confirm === 'true') body.confirm = true;
      const out = await refresh(c, 'drop_table', body);
      // A drop starts no run: it answers when done (200), or stalled (500).
      return c.json(out.body as never, out.status === 500 ? 500 : 200);
    },
  );

  return router;
}
