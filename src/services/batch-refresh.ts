import type { Principal } from '../auth/tokens.js';
import { AppError } from '../domain/errors.js';
import { newId } from '../lib/ids.js';
import type { Logger } from '../lib/logger.js';
import { launchesRun, type RefreshStrategy, refreshModes } from '../refresh/modes.js';
import { workflowIds } from '../temporal/ids.js';
import { searchAttributePairs, spoken } from '../temporal/search-attributes.js';
import type { BatchEntryResult, BatchSlot } from '../workflows/batch-refresh.js';
import { batchRefreshWorkflow } from '../workflows/index.js';
import { requireUsableConnection } from './connections.js';
import type { ServiceDeps } from './deps.js';
import { computeImpact, type Impact, impactNotes, impactWarnings } from './impact.js';
import { findIngestion } from './ingestions.js';
import { refuseIfBusy } from './operations.js';
import { checkRateLimit, estimateSource, requestRefresh } from './refresh.js';

export type BatchOperation = 'full_refresh' | 'fresh_start';

export interface BatchRequest {
  ingestionIds: string[];
  type: BatchOperation;
  autoRun: boolean;
  dryRun: boolean;
  strategy: RefreshStrategy;
  stopOnError: boolean;
  /** `listed`: one at a time in the given order, each after the previous operation ended. */
  order: 'listed' | 'parallel';
  principal: Principal;
}

export type EntryStatus =
  | 'dry_run'
  | 'accepted'
  | 'running'
  | 'awaiting_approval'
  | 'success'
  | 'partial_failure'
  | 'failed'
  | 'cancelled';

/** One ingestion of the batch, in seed 001's vocabulary. */
export interface BatchEntry {
  ingestion_id: string;
  status: EntryStatus;
  operation_id?: string;
  run_id?: string | null;
  impact?: Impact;
  warnings?: string[];
  error?: { error_code: string; detail: string };
}

export interface BatchResult {
  /** The batch's operation id (a dry run's: only its audit events'). */
  batchId: string;
  /** The batch's workflow; absent for a dry run, or when nothing was started. */
  workflowId: string | undefined;
  status: 'dry_run' | 'accepted' | 'partial_failure' | 'failed';
  timestamp: string;
  entries: BatchEntry[];
  summary: {
    total: number;
    started: number;
    failed: number;
    cancelled: number;
    impact: Impact;
    warnings: string[];
  };
}

const zeroImpact = (): Impact => ({
  files_to_process: 0,
  files_skipped: 0,
  estimated_data_size_bytes: 0,
  estimated_data_size_gb: 0,
  estimated_cost_usd: 0,
  estimated_duration_minutes: 0,
});

/** Summed, with the rounding each figure has on its own (the duration is the sequential worst case). */
export function sumImpacts(impacts: Impact[]): Impact {
  const t = zeroImpact();
  for (const i of impacts) {
    t.files_to_process += i.files_to_process;
    t.files_skipped += i.files_skipped;
    t.estimated_data_size_bytes += i.estimated_data_size_bytes;
    t.estimated_data_size_gb += i.estimated_data_size_gb;
    t.estimated_cost_usd += i.estimated_cost_usd;
    t.estimated_duration_minutes += i.estimated_duration_minutes;
  }
  t.estimated_data_size_gb = Math.round(t.estimated_data_size_gb * 1000) / 1000;
  t.estimated_cost_usd = Math.round(t.estimated_cost_usd * 100) / 100;
  return t;
}

/** Runs `fn` over `items` with at most `limit` at once; results in the items' order. */
export async function mapLimited<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return out;
}

type Deps = ServiceDeps & { log: Logger };

/** An entry's refusal: our own errors by their code; anything else is logged and shown generically. */
function failed(deps: Deps, ingestionId: string, err: unknown): BatchEntry {
  if (err instanceof AppError)
    return {
      ingestion_id: ingestionId,
      status: 'failed',
      error: { error_code: err.code, detail: err.message },
    };
  deps.log.error({ err, ingestionId }, 'batch refresh member failed');
  return {
    ingestion_id: ingestionId,
    status: 'failed',
    error: { error_code: 'INTERNAL_ERROR', detail: 'Internal error; see the service log' },
  };
}

async function auditBatch(
  deps: Deps,
  req: BatchRequest,
  batchId: string,
  impact: Impact,
  result: string,
): Promise<void> {
  const detail = { ...impact, batch_id: batchId, operation: req.type, ingestion_ids: req.ingestionIds };
  await deps.sql`
    insert into autoloader.audit_events (tenant_id, subject, action, ingestion_id, operation_id, dry_run, impact, result)
    values (${req.principal.tenantId}, ${req.principal.subject}, 'batch_refresh', null, null, ${req.dryRun},
            ${deps.sql.json(detail as never)}, ${result})`;
}

/** The large-operation rule on the batch's total: a batch dry run of the same operation within the hour. */
export async function checkLargeBatch(
  deps: Pick<ServiceDeps, 'sql' | 'refresh'>,
  req: Pick<BatchRequest, 'principal' | 'type'>,
  total: Impact,
): Promise<void> {
  if (total.estimated_cost_usd <= deps.refresh.largeOperationUsd) return;
  const [row] = await deps.sql<{ n: number }[]>`
    select count(*)::int as n from autoloader.audit_events
    where subject = ${req.principal.subject} and tenant_id = ${req.principal.tenantId}
      and action = 'batch_refresh' and dry_run and impact->>'operation' = ${req.type}
      and created_at > now() - interval '1 hour'`;
  if ((row?.n ?? 0) === 0) {
    throw new AppError(
      'DRY_RUN_REQUIRED',
      `Batch estimated at $${total.estimated_cost_usd.toFixed(2)} in total. Run it with dry_run=true first to review.`,
      {
        help: `Batches above $${deps.refresh.largeOperationUsd} in total need a batch dry run within the hour before`,
      },
    );
  }
}

/**
 * Seed 001's batch refresh. A dry run previews each ingestion through the same use case as a single
 * dry run. Otherwise the batch is one operation and one workflow (`batchRefreshWorkflow`): each
 * ingestion's refresh is a child holding the ingestion, at most BATCH_REFRESH_PARALLELISM at once
 * (or one after another in the listed order), each its own operation. The answer names every
 * member's operation up front; the batch operation's `result` says how each ended. A busy or missing
 * ingestion is reported in its entry and the others go on (unless stop_on_error). The batch is one
 * request to the rate limit, and the large-operation rule applies to its total.
 */
export async function requestBatchRefresh(deps: Deps, req: BatchRequest): Promise<BatchResult> {
  const timestamp = new Date().toISOString();
  const conflictDetail = `Cannot ${refreshModes[req.type].title.toLowerCase()} while an operation runs on this ingestion`;

  // Resolve every id first: another tenant's ingestion is not found, exactly like a missing one.
  const resolved = await mapLimited(req.ingestionIds, deps.refresh.batchParallelism, async (id) => {
    try {
      const ingestion = await findIngestion(deps, req.principal.tenantId, id);
      await requireUsableConnection(deps, req.principal.tenantId, ingestion.connectionId);
      // A busy ingestion is reported before anything reads its table (a load may hold it locked).
      if (!req.dryRun) await refuseIfBusy(deps.temporal, id, conflictDetail);
      return { id, table: `${ingestion.destinationSchema}.${ingestion.destinationTable}`, entry: undefined };
    } catch (err) {
      return { id, table: id, entry: failed(deps, id, err) };
    }
  });
  const usable = resolved.filter((r) => r.entry === undefined);
  if (req.dryRun) return dryRunBatch(deps, req, resolved, timestamp);

  const batchId = newId('op');
  const estimates = new Map<string, { impact: Impact; warnings: string[]; notes: string[] }>();
  if (usable.length > 0) {
    await checkRateLimit(deps, req);
    await mapLimited(usable, deps.refresh.batchParallelism, async ({ id }) => {
      const src = await estimateSource(deps, id);
      const impact = computeImpact(req.type, req.autoRun, src, deps.refresh);
      estimates.set(id, {
        impact,
        warnings: impactWarnings(req.type, impact, src),
        notes: impactNotes(req.type, req.autoRun, impact, src),
      });
    });
    const total = sumImpacts([...estimates.values()].map((e) => e.impact));
    await checkLargeBatch(deps, req, total);
    await auditBatch(deps, req, batchId, total, 'accepted');
  }

  // stop_on_error: nothing listed after a refusal is started.
  const firstRefused = resolved.findIndex((r) => r.entry !== undefined);
  const withRun = launchesRun(refreshModes[req.type], req.autoRun);
  const slots: BatchSlot[] = resolved.map((r, i) => {
    if (r.entry) return { ingestionId: r.id, settled: settledEntry(r.entry) };
    if (req.stopOnError && firstRefused >= 0 && i > firstRefused)
      return { ingestionId: r.id, settled: { ingestion_id: r.id, status: 'cancelled' } };
    const e = estimates.get(r.id)!;
    return {
      ingestionId: r.id,
      member: {
        ingestionId: r.id,
        table: r.table,
        operationId: newId('op'),
        runId: newId('run'),
        launchesRun: withRun,
        impact: { ...e.impact },
        warnings: e.warnings,
        notes: e.notes,
      },
    };
  });
  const members = slots.flatMap((s) => (s.member ? [s.member] : []));
  const entries: BatchEntry[] = slots.map((s) => {
    if (!s.member)
      return (
        resolved.find((r) => r.id === s.ingestionId)?.entry ?? {
          ingestion_id: s.ingestionId,
          status: 'cancelled',
        }
      );
    const e = estimates.get(s.ingestionId)!;
    return {
      ingestion_id: s.ingestionId,
      status: 'accepted',
      operation_id: s.member.operationId,
      run_id: withRun ? s.member.runId : null,
      impact: e.impact,
      warnings: e.warnings,
    };
  });

  let workflowId: string | undefined;
  if (members.length > 0) {
    workflowId = workflowIds.batchRefresh(req.principal.tenantId, batchId);
    const total = sumImpacts(members.map((m) => estimates.get(m.ingestionId)!.impact));
    await deps.sql`
      insert into autoloader.operations (id, tenant_id, type, strategy, status, requested_by, auto_run, workflow_id, impact, warnings)
      values (${batchId}, ${req.principal.tenantId}, 'batch_refresh', ${req.strategy}, 'running', ${req.principal.subject},
              ${req.autoRun}, ${workflowId}, ${deps.sql.json({ ...total, operation: req.type, ingestion_ids: req.ingestionIds } as never)},
              ${deps.sql.json(entries.flatMap((e) => (e.warnings ?? []).map((w) => `${e.ingestion_id}: ${w}`)))})`;
    await deps.temporal.workflow.start(batchRefreshWorkflow, {
      workflowId,
      taskQueue: deps.taskQueue,
      args: [
        {
          operationId: batchId,
          tenantId: req.principal.tenantId,
          requestedBy: req.principal.subject,
          type: req.type,
          strategy: req.strategy,
          autoRun: req.autoRun,
          graceSeconds: deps.refresh.swapGraceSeconds,
          run: deps.runDefaults,
          slots,
          order: req.order,
          parallelism: deps.refresh.batchParallelism,
          stopOnError: req.stopOnError,
        },
      ],
      memo: { operationId: batchId },
      typedSearchAttributes: searchAttributePairs({
        tenantId: req.principal.tenantId,
        operation: 'batch_refresh',
        trigger: 'manual',
      }),
      staticSummary: `batch ${spoken(req.type)}${req.strategy === 'swap' ? ' (swap)' : ''} of ${members.length} ingestions (${req.order})`,
    });
  }
  return summariseBatch(req, batchId, workflowId, timestamp, entries);
}

/** A request-time refusal as the batch operation's result records it. */
function settledEntry(e: BatchEntry): BatchEntryResult {
  return {
    ingestion_id: e.ingestion_id,
    status: e.status === 'cancelled' ? 'cancelled' : 'failed',
    ...(e.error ? { error: e.error } : {}),
  };
}

/** Each ingestion previewed by the single refresh's dry run; nothing recorded but the audit. */
async function dryRunBatch(
  deps: Deps,
  req: BatchRequest,
  resolved: { id: string; entry: BatchEntry | undefined }[],
  timestamp: string,
): Promise<BatchResult> {
  const batchId = newId('batch');
  const entries = await mapLimited(resolved, deps.refresh.batchParallelism, async (r) => {
    if (r.entry) return r.entry;
    try {
      const result = await requestRefresh(deps, {
        type: req.type,
        ingestionId: r.id,
        autoRun: req.autoRun,
        dryRun: true,
        strategy: req.strategy,
        principal: req.principal,
        batchId,
      });
      return {
        ingestion_id: r.id,
        status: 'dry_run' as const,
        impact: result.impact,
        warnings: result.warnings,
      };
    } catch (err) {
      return failed(deps, r.id, err);
    }
  });
  const impact = sumImpacts(entries.flatMap((e) => (e.impact ? [e.impact] : [])));
  await auditBatch(deps, req, batchId, impact, 'dry_run');
  return summariseBatch(req, batchId, undefined, timestamp, entries);
}

function summariseBatch(
  req: BatchRequest,
  batchId: string,
  workflowId: string | undefined,
  timestamp: string,
  entries: BatchEntry[],
): BatchResult {
  const impact = sumImpacts(entries.flatMap((e) => (e.impact ? [e.impact] : [])));
  const warnings = entries.flatMap((e) => (e.warnings ?? []).map((w) => `${e.ingestion_id}: ${w}`));
  const failedCount = entries.filter((e) => e.status === 'failed').length;
  const cancelledCount = entries.filter((e) => e.status === 'cancelled').length;
  const started = entries.filter((e) => e.operation_id !== undefined).length;
  if (failedCount > 0) warnings.push(`${failedCount} of ${entries.length} ingestions could not be refreshed`);
  return {
    batchId,
    workflowId,
    status: req.dryRun
      ? 'dry_run'
      : started === entries.length
        ? 'accepted'
        : started > 0
          ? 'partial_failure'
          : 'failed',
    timestamp,
    entries,
    summary: {
      total: entries.length,
      started,
      failed: failedCount,
      cancelled: cancelledCount,
      impact,
      warnings,
    },
  };
}
