import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import { ApplicationFailure, executeChild, proxyActivities, uuid4, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import { formatId, uuidBytes } from '../lib/id-format.js';
import type { RefreshStrategy } from '../refresh/modes.js';
import { workflowIds } from '../temporal/ids.js';
import { childSearchAttributes } from '../temporal/search-attributes.js';
import { ingestionRunWorkflow } from './ingestion-run.js';
import { longActivity, shortActivity } from './options.js';
import { refreshWorkflow } from './refresh.js';

const { admitScheduledOperation, finishOperation, evaluateScheduledCondition } =
  proxyActivities<Activities>(shortActivity);
const { estimateImpact } = proxyActivities<Activities>(longActivity);

export interface ScheduledOperationInput {
  ingestionId: string;
  operation: 'run' | 'full_refresh';
  strategy: RefreshStrategy;
  run: { parallelism: number; batchMaxFiles: number; batchMaxBytes: number };
  /** A refresh schedule's `refresh_if`: the full refresh runs only when this holds at the tick. */
  condition?: string;
}

export type ScheduledOutcome =
  | { started: true; runId: string; operationId?: string }
  | { started: false; reason: string };

/**
 * What a Temporal Schedule starts. The real operation runs as a child under the ingestion's workflow
 * id, so a scheduled tick can never overlap a running run or refresh (manual or scheduled): the
 * child start is refused and the tick is recorded as skipped. The schedule's own overlap policy
 * (SKIP) keeps ticks from piling up behind a long operation.
 */
export async function scheduledOperationWorkflow(input: ScheduledOperationInput): Promise<ScheduledOutcome> {
  const { ingestionId } = input;
  // Ids formatted as the API formats them, from Temporal's deterministic randomness.
  const runId = formatId('run', uuidBytes(uuid4()));
  const operationId = formatId('op', uuidBytes(uuid4()));
  try {
    // A full refresh is admitted on its estimate, as a person's request is (large-operation rule).
    const source = input.operation === 'full_refresh' ? await estimateImpact({ ingestionId }) : undefined;
    if (input.condition && source) {
      const verdict = await evaluateScheduledCondition({ ingestionId, condition: input.condition, source });
      if (!verdict.result) {
        const facts = Object.entries(verdict.facts)
          .map(([k, v]) => `${k}=${v}`)
          .join(', ');
        return { started: false, reason: `condition ${verdict.condition} is false (${facts})` };
      }
    }
    const admission = await admitScheduledOperation({
      operationId,
      ingestionId,
      operation: input.operation,
      strategy: input.strategy,
      source,
    });
    if (!admission.admitted) return { started: false, reason: admission.reason };
    if (input.operation === 'run') {
      await executeChild(ingestionRunWorkflow, {
        workflowId: workflowIds.ingestion(ingestionId),
        args: [{ runId, ingestionId, trigger: 'schedule', ...input.run }],
        memo: { operation: 'run', runId },
        typedSearchAttributes: childSearchAttributes(workflowInfo().typedSearchAttributes, {
          operation: 'run',
          runId,
          trigger: 'schedule',
        }),
        staticSummary: `scheduled run ${runId}`,
      });
      return { started: true, runId };
    }
    await executeChild(refreshWorkflow, {
      workflowId: workflowIds.ingestion(ingestionId),
      args: [
        {
          operationId,
          ingestionId,
          type: 'full_refresh',
          autoRun: true,
          runId,
          run: input.run,
          strategy: input.strategy,
          graceSeconds: admission.graceSeconds,
        },
      ],
      memo: { operation: 'full_refresh', operationId, runId },
      typedSearchAttributes: childSearchAttributes(workflowInfo().typedSearchAttributes, {
        operation: 'full_refresh',
        runId,
        trigger: 'schedule',
      }),
      staticSummary: `scheduled full refresh${input.strategy === 'swap' ? ' (swap)' : ''} ${operationId}`,
    });
    return { started: true, runId, operationId };
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) {
      const reason = 'another operation is running on this ingestion';
      // The refresh's operation row was created on admission: it ends here, saying why.
      if (input.operation === 'full_refresh')
        await finishOperation({ operationId, status: 'cancelled', error: `skipped: ${reason}` });
      return { started: false, reason };
    }
    throw err instanceof ApplicationFailure
      ? err
      : ApplicationFailure.nonRetryable(String(err), 'ScheduledOperationFailed');
  }
}
