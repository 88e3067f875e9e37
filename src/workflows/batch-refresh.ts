import { asOperation } from './data-refresh.js';
import { inLanes, type MemberContext, type MemberSpec, refreshMember } from './members.js';

/** One ingestion of a batch, as the batch operation's `result` reports it. */
export interface BatchEntryResult {
  ingestion_id: string;
  status: 'success' | 'failed' | 'cancelled';
  operation_id?: string;
  run_id?: string | null;
  error?: { error_code: string; detail: string };
}

/** A listed ingestion: refreshed by the batch, or settled by the request (refused, not started). */
export type BatchSlot = { ingestionId: string } & (
  | { member: MemberSpec & { launchesRun: boolean }; settled?: undefined }
  | { member?: undefined; settled: BatchEntryResult }
);

export interface BatchRefreshInput extends Omit<MemberContext, 'parentOperationId' | 'trigger'> {
  /** The batch's own operation, finished by this workflow with the entries as its `result`. */
  operationId: string;
  /** In the listed order. */
  slots: BatchSlot[];
  /** `listed`: one at a time, each after the previous one ended (dependent tables). */
  order: 'listed' | 'parallel';
  parallelism: number;
  stopOnError: boolean;
}

export interface BatchRefreshResult {
  batch_id: string;
  operation: MemberContext['type'];
  entries: BatchEntryResult[];
  summary: { total: number; succeeded: number; failed: number; cancelled: number };
}

/**
 * Seed 001's batch refresh as one workflow: each ingestion's refresh is a child under the
 * ingestion's own workflow id (its own operation, as for a single refresh), at most `parallelism`
 * at once (or one after another in the listed order), each to its end. A busy ingestion or a failed
 * refresh is that entry's outcome and the others go on, unless stop_on_error: then nothing not yet
 * started is. A worker crash resumes here without refreshing finished members again.
 */
export async function batchRefreshWorkflow(input: BatchRefreshInput): Promise<BatchRefreshResult> {
  return asOperation(
    input.operationId,
    () => refreshBatch(input),
    (r) =>
      r.summary.succeeded === r.summary.total
        ? 'success'
        : r.summary.succeeded > 0
          ? 'partial_failure'
          : 'failed',
  );
}

async function refreshBatch(input: BatchRefreshInput): Promise<BatchRefreshResult> {
  const { operationId, slots, order, parallelism, stopOnError, ...shared } = input;
  const ctx: MemberContext = { ...shared, parentOperationId: operationId, trigger: 'batch_refresh' };
  let stopped = false;
  const entries = await inLanes(
    slots,
    order === 'listed' ? 1 : parallelism,
    async (slot): Promise<BatchEntryResult> => {
      if (!slot.member) return slot.settled;
      const m = slot.member;
      if (stopped) return { ingestion_id: slot.ingestionId, status: 'cancelled' };
      const outcome = await refreshMember(ctx, m);
      const ids = { operation_id: m.operationId, run_id: m.launchesRun ? m.runId : null };
      if (outcome.ok) return { ingestion_id: slot.ingestionId, status: 'success', ...ids };
      if (stopOnError) stopped = true;
      return {
        ingestion_id: slot.ingestionId,
        status: outcome.status,
        ...(outcome.busy ? {} : ids),
        error: { error_code: outcome.busy ? 'RUN_IN_PROGRESS' : 'REFRESH_FAILED', detail: outcome.error },
      };
    },
  );
  const count = (s: BatchEntryResult['status']) => entries.filter((e) => e.status === s).length;
  return {
    batch_id: operationId,
    operation: input.type,
    entries,
    summary: {
      total: entries.length,
      succeeded: count('success'),
      failed: count('failed'),
      cancelled: count('cancelled'),
    },
  };
}
