import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import {
  CancellationScope,
  executeChild,
  proxyActivities,
  rootCause,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import type { MemberRefresh } from '../activities/member-refresh.js';
import { workflowIds } from '../temporal/ids.js';
import { searchAttributePairs, spoken } from '../temporal/search-attributes.js';
import { shortActivity } from './options.js';
import { type RefreshInput, refreshWorkflow } from './refresh.js';

const { beginMemberRefresh, abandonMemberRefresh, memberRefreshOutcome } =
  proxyActivities<Activities>(shortActivity);

/** One ingestion of a refresh of several (a batch, an object-store connection's data refresh). */
export interface MemberSpec {
  ingestionId: string;
  /** Its destination, for the Temporal UI's summary. */
  table: string;
  /** Chosen by the API, so the answer names them and a retried or replayed start records the same. */
  operationId: string;
  runId: string;
  impact: Record<string, unknown>;
  warnings: string[];
  notes: string[];
}

/** What every member of one parent shares. */
export interface MemberContext {
  parentOperationId: string;
  tenantId: string;
  requestedBy: string;
  type: MemberRefresh['type'];
  strategy: MemberRefresh['strategy'];
  autoRun: boolean;
  graceSeconds: number;
  run: RefreshInput['run'];
  /** The search attribute `AutoloaderTrigger` of each member: what started it. */
  trigger: string;
}

export type MemberOutcome =
  | { ok: true; rows: number }
  | { ok: false; status: 'failed' | 'cancelled'; error: string; busy?: true };

/**
 * One ingestion's refresh as a child holding the ingestion's workflow id, so it is exclusive with
 * the ingestion's runs and refreshes: a busy ingestion is this member's outcome, not an error of the
 * parent. The member is recorded as the ingestion's own operation, which the refresh finishes.
 */
export async function refreshMember(ctx: MemberContext, m: MemberSpec): Promise<MemberOutcome> {
  await beginMemberRefresh({
    parentOperationId: ctx.parentOperationId,
    operationId: m.operationId,
    runId: m.runId,
    ingestionId: m.ingestionId,
    tenantId: ctx.tenantId,
    requestedBy: ctx.requestedBy,
    type: ctx.type,
    strategy: ctx.strategy,
    autoRun: ctx.autoRun,
    impact: m.impact,
    warnings: m.warnings,
    notes: m.notes,
  });
  try {
    await executeChild(refreshWorkflow, {
      workflowId: workflowIds.ingestion(m.ingestionId),
      args: [
        {
          operationId: m.operationId,
          ingestionId: m.ingestionId,
          type: ctx.type,
          autoRun: ctx.autoRun,
          runId: m.runId,
          run: ctx.run,
          strategy: ctx.strategy,
          graceSeconds: ctx.graceSeconds,
        },
      ],
      // What a 409 on the ingestion names while this member holds it, as for any refresh.
      memo: { operation: ctx.type, operationId: m.operationId, runId: m.runId },
      typedSearchAttributes: workflowInfo().typedSearchAttributes.updateCopy(
        searchAttributePairs({
          ingestionId: m.ingestionId,
          operation: ctx.type,
          runId: m.runId,
          trigger: ctx.trigger,
        }),
      ),
      staticSummary: `${spoken(ctx.type)}${ctx.strategy === 'swap' ? ' (swap)' : ''} of ${m.table}, for ${spoken(ctx.trigger)} ${ctx.parentOperationId}`,
    });
  } catch (err) {
    // The parent itself cancelled: stop. A member cancelled on its own (its operation's cancel) is
    // that member's outcome.
    if (CancellationScope.current().consideredCancelled) throw err;
    if (err instanceof WorkflowExecutionAlreadyStartedError) {
      await abandonMemberRefresh({ operationId: m.operationId });
      return {
        ok: false,
        status: 'failed',
        busy: true,
        error: 'an operation is running on this ingestion (RUN_IN_PROGRESS)',
      };
    }
    const ended = await memberRefreshOutcome({ operationId: m.operationId, runId: m.runId });
    return {
      ok: false,
      status: ended.status === 'cancelled' ? 'cancelled' : 'failed',
      error: ended.error ?? rootCause(err) ?? String(err),
    };
  }
  const ended = await memberRefreshOutcome({ operationId: m.operationId, runId: m.runId });
  return { ok: true, rows: ended.rows };
}

/** `fn` over `items` in at most `width` lanes; results in the items' order. */
export async function inLanes<T, R>(items: T[], width: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(width, items.length)) }, lane));
  return out;
}
