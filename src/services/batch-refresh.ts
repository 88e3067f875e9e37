import { WorkflowFailedError } from '@temporalio/client';
import type { Principal } from '../auth/tokens.js';
import { AppError } from '../domain/errors.js';
import { newId } from '../lib/ids.js';
import type { Logger } from '../lib/logger.js';
import { type RefreshStrategy, refreshModes } from '../refresh/modes.js';
import { workflowIds } from '../temporal/ids.js';
import { requireUsableConnection } from './connections.js';
import type { ServiceDeps } from './deps.js';
import { computeImpact, type Impact } from './impact.js';
import { findIngestion } from './ingestions.js';
import { refuseIfBusy } from './operations.js';
import { checkRateLimit, estimateSource, type RefreshResult, requestRefresh } from './refresh.js';

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
  batchId: string;
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

function entryOf(ingestionId: string, r: RefreshResult): BatchEntry {
  const base = { ingestion_id: ingestionId, impact: r.impact, warnings: r.warnings };
  if (r.kind === 'dry_run') return { ...base, status: 'dry_run' };
  return {
    ...base,
    status: r.kind === 'started' ? 'accepted' : 'partial_failure',
    operation_id: r.operationId,
    run_id: r.runId,
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

/** Waits for the operation holding the ingestion to end; returns its recorded status. */
async function operationEnded(deps: Deps, ingestionId: string, operationId: string): Promise<string> {
  try {
    await deps.temporal.workflow.getHandle(workflowIds.ingestion(ingestionId)).result();
  } catch (err) {
    // A failed run fails the workflow; the operation row says how it ended.
    if (!(err instanceof WorkflowFailedError)) throw err;
  }
  const [op] = await deps.sql<
    { status: string }[]
  >`select status from autoloader.operations where id = ${operationId}`;
  return op?.status ?? 'failed';
}

/**
 * Seed 001's batch refresh: each ingestion refreshed through the same use case as a single refresh,
 * at most BATCH_REFRESH_PARALLELISM at once, one entry per ingestion. A busy or missing ingestion is
 * reported in its entry and the others go on (unless stop_on_error). The batch is one request to the
 * rate limit, and the large-operation rule applies to its total.
 *
 * The batch runs in this use case, not in a workflow of its own: each member is its own durable
 * refresh workflow, but the fan-out is done by the request that asked for it.
 */
export async function requestBatchRefresh(deps: Deps, req: BatchRequest): Promise<BatchResult> {
  const batchId = newId('batch');
  const timestamp = new Date().toISOString();
  const parallelism = req.order === 'listed' ? 1 : deps.refresh.batchParallelism;
  const conflictDetail = `Cannot ${refreshModes[req.type].title.toLowerCase()} while an operation runs on this ingestion`;

  // Resolve every id first: another tenant's ingestion is not found, exactly like a missing one.
  const resolved = await mapLimited(req.ingestionIds, parallelism, async (id) => {
    try {
      const ingestion = await findIngestion(deps, req.principal.tenantId, id);
      await requireUsableConnection(deps, req.principal.tenantId, ingestion.connectionId);
      // A busy ingestion is reported before anything reads its table (a load may hold it locked).
      if (!req.dryRun) await refuseIfBusy(deps.temporal, id, conflictDetail);
      return { id, entry: undefined };
    } catch (err) {
      return { id, entry: failed(deps, id, err) };
    }
  });
  const usable = resolved.filter((r) => r.entry === undefined).map((r) => r.id);

  if (!req.dryRun && usable.length > 0) {
    await checkRateLimit(deps, req);
    const estimates = await mapLimited(usable, deps.refresh.batchParallelism, async (id) =>
      computeImpact(req.type, req.autoRun, await estimateSource(deps, id), deps.refresh),
    );
    const total = sumImpacts(estimates);
    await checkLargeBatch(deps, req, total);
    await auditBatch(deps, req, batchId, total, 'accepted');
  }

  // stop_on_error: nothing listed after a refusal is started (in parallel order, members already
  // started when another fails keep going; they are independent operations).
  const firstRefused = resolved.findIndex((r) => r.entry !== undefined);
  const cancelled = (id: string): BatchEntry => ({ ingestion_id: id, status: 'cancelled' });
  let stopped = false;
  const ran = new Map<string, BatchEntry>();
  await mapLimited(usable, parallelism, async (id) => {
    const listedAfterRefusal =
      firstRefused >= 0 && req.ingestionIds.indexOf(id) > firstRefused && req.stopOnError;
    if (stopped || listedAfterRefusal) {
      ran.set(id, cancelled(id));
      return;
    }
    let entry: BatchEntry;
    try {
      const result = await requestRefresh(deps, {
        type: req.type,
        ingestionId: id,
        autoRun: req.autoRun,
        dryRun: req.dryRun,
        strategy: req.strategy,
        principal: req.principal,
        batchId,
      });
      entry = entryOf(id, result);
      // Listed order is for dependent tables: the next one starts once this one has ended (the
      // last one is answered as started, like a single refresh).
      if (req.order === 'listed' && entry.operation_id && id !== usable.at(-1))
        entry.status = (await operationEnded(deps, id, entry.operation_id)) as EntryStatus;
    } catch (err) {
      entry = failed(deps, id, err);
    }
    if (req.stopOnError && !['accepted', 'success', 'dry_run'].includes(entry.status)) stopped = true;
    ran.set(id, entry);
  });

  const entries = resolved.map((r) => r.entry ?? ran.get(r.id)!);
  const impact = sumImpacts(entries.flatMap((e) => (e.impact ? [e.impact] : [])));
  const warnings = entries.flatMap((e) => (e.warnings ?? []).map((w) => `${e.ingestion_id}: ${w}`));
  const failedCount = entries.filter((e) => e.status === 'failed').length;
  const cancelledCount = entries.filter((e) => e.status === 'cancelled').length;
  const started = entries.filter((e) => e.operation_id !== undefined).length;
  if (failedCount > 0) warnings.push(`${failedCount} of ${entries.length} ingestions could not be refreshed`);
  if (req.dryRun) await auditBatch(deps, req, batchId, impact, 'dry_run');
  return {
    batchId,
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
