import http from 'node:http';
import https from 'node:https';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { AddressNotAllowedError, guardedAgents } from '../net/address-policy.js';
import { type SecretRef, SecretRefError } from '../secrets/refs.js';
import { sign, signatureHeader } from '../webhooks/signature.js';
import type { ActivityDeps } from './deps.js';
import type { WebhookEventBody } from './match-webhooks.js';

/** A receiver that does not answer within this long counts as a failed attempt (retried). */
const requestTimeoutMs = 15_000;

export interface DeliverWebhookInput {
  webhookId: string;
  event: WebhookEventBody;
}

export type DeliveryOutcome = { delivered: true; statusCode: number } | { delivered: false; reason: string };

/** One POST through the address policy's agents: its status code, or the error that prevented it. */
function post(
  url: URL,
  agents: ReturnType<typeof guardedAgents>,
  headers: Record<string, string>,
  body: string,
): Promise<number> {
  const request = url.protocol === 'https:' ? https.request : http.request;
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        agent: url.protocol === 'https:' ? agents.https : agents.http,
        headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
        timeout: requestTimeoutMs,
      },
      (res) => {
        // The body is not used; reading it frees the socket.
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${requestTimeoutMs / 1000} s`)));
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * One delivery attempt of one event to one webhook, recorded in the delivery log whatever happens.
 * A 2xx answer delivers it; anything else throws so that Temporal retries with backoff until the
 * workflow's deadline. An address the policy refuses (checked on the resolved address, on every
 * attempt) is never contacted and not retried; nor is a webhook deleted in the meantime.
 */
export function makeDeliverWebhook({ sql, sources }: ActivityDeps) {
  return async function deliverWebhook(input: DeliverWebhookInput): Promise<DeliveryOutcome> {
    const attempt = Context.current().info.attempt;
    const [hook] = await sql<{ url: string; tenantId: string; secretRef: SecretRef }[]>`
      select url, tenant_id as "tenantId", secret_ref as "secretRef"
      from autoloader.webhooks where id = ${input.webhookId}`;
    if (!hook) return { delivered: false, reason: 'webhook deleted' };

    const log = async (statusCode: number | null, error: string | null) => {
      await sql`
        insert into autoloader.webhook_deliveries (webhook_id, event_id, event_type, attempt, status_code, error)
        values (${input.webhookId}, ${input.event.id}, ${input.event.type}, ${attempt}, ${statusCode}, ${error})`;
    };

    const ctx = await sources(hook.tenantId);
    let secret: string;
    try {
      secret = await ctx.secrets.resolve(hook.secretRef, 'secret');
    } catch (err) {
      if (!(err instanceof SecretRefError)) throw err;
      // A deleted or disallowed secret: retrying will not bring it back.
      await log(null, err.message);
      throw ApplicationFailure.nonRetryable(err.message, 'WebhookSecretUnavailable');
    }

    const body = JSON.stringify(input.event);
    const headers = {
      'content-type': 'application/json',
      'user-agent': 'autoloader-webhooks',
      'autoloader-event-id': input.event.id,
      'autoloader-event-type': input.event.type,
      [signatureHeader.toLowerCase()]: sign(secret, Math.floor(Date.now() / 1000), body),
    };
    const agents = guardedAgents(ctx.address);
    let statusCode: number;
    try {
      statusCode = await post(new URL(hook.url), agents, headers, body);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      await log(null, message);
      if (err instanceof AddressNotAllowedError)
        throw ApplicationFailure.nonRetryable(message, 'EndpointNotAllowed');
      throw err;
    } finally {
      agents.http.destroy();
      agents.https.destroy();
    }
    await log(statusCode, statusCode >= 200 && statusCode < 300 ? null : `HTTP ${statusCode}`);
    if (statusCode < 200 || statusCode >= 300)
      throw ApplicationFailure.retryable(`${hook.url} answered HTTP ${statusCode}`, 'WebhookRejected');
    return { delivered: true, statusCode };
  };
}
