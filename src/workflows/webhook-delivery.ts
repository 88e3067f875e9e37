import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import { patched, proxyActivities, startChild, workflowInfo } from '@temporalio/workflow';
import type { DeliveryOutcome } from '../activities/deliver-webhook.js';
import type { Activities } from '../activities/index.js';
import type { WebhookEventBody, WebhookSubject } from '../activities/match-webhooks.js';
import { workflowIds } from '../temporal/ids.js';
import { childSearchAttributes } from '../temporal/search-attributes.js';
import { shortActivity } from './options.js';

const short = proxyActivities<Activities>(shortActivity);

export interface WebhookDeliveryInput {
  webhookId: string;
  event: WebhookEventBody;
  /** WEBHOOK_DELIVERY_DEADLINE_SECONDS, fixed when the event happened. */
  deadlineSeconds: number;
  retryInitialSeconds: number;
}

/**
 * Delivers one event to one webhook: a single activity that Temporal retries with exponential
 * backoff (doubling, at most an hour apart) until the deadline; each attempt is in the delivery
 * log and in this workflow's history. Refused addresses and missing secrets are not retried.
 */
export async function webhookDeliveryWorkflow(input: WebhookDeliveryInput): Promise<DeliveryOutcome> {
  const { deliverWebhook } = proxyActivities<Activities>({
    startToCloseTimeout: '1 minute',
    scheduleToCloseTimeout: input.deadlineSeconds * 1000,
    summary: `POST ${input.event.type} ${input.event.id}`,
    retry: {
      initialInterval: input.retryInitialSeconds * 1000,
      backoffCoefficient: 2,
      maximumInterval: '1 hour',
      nonRetryableErrorTypes: ['EndpointNotAllowed', 'WebhookSecretUnavailable'],
    },
  });
  return deliverWebhook({ webhookId: input.webhookId, event: input.event });
}

/**
 * Starts a delivery per webhook subscribed to the event `subject`'s end makes, without waiting for
 * any: the deliveries are abandoned children, so the caller finishes as soon as they have started
 * (a slow or failing receiver never holds up a run). The patch keeps histories recorded before
 * webhooks existed replayable.
 */
export async function notifyWebhooks(subject: WebhookSubject): Promise<void> {
  if (!patched('webhook-notifications')) return;
  const matched = await short.matchWebhooks({ subject });
  const event = matched.event;
  if (!event) return;
  for (const webhookId of matched.webhookIds) {
    try {
      await startChild(webhookDeliveryWorkflow, {
        workflowId: workflowIds.webhookDelivery(webhookId, event.id),
        args: [
          {
            webhookId,
            event,
            deadlineSeconds: matched.deadlineSeconds,
            retryInitialSeconds: matched.retryInitialSeconds,
          },
        ],
        parentClosePolicy: 'ABANDON',
        staticSummary: `deliver ${event.type} (${event.id}) to webhook ${webhookId}`,
        typedSearchAttributes: childSearchAttributes(workflowInfo().typedSearchAttributes, {
          operation: 'webhook_delivery',
          trigger: event.type,
        }),
      });
    } catch (err) {
      // Already started for this event (the starter was retried): one delivery per event is enough.
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    }
  }
}
