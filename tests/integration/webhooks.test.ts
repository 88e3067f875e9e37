import { createHmac, randomUUID } from 'node:crypto';
import http, { type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeDeliverWebhook } from '../../src/activities/deliver-webhook.js';
import { inProcessClient } from '../../src/api/in-process.js';
import { createToken, ensureTenant } from '../../src/auth/tokens.js';
import { loadConfig } from '../../src/config.js';
import { workflowIds } from '../../src/temporal/ids.js';
import { activityDepsFromConfig } from '../../src/worker.js';
import { type Harness, jsonLines, startHarness } from '../helpers/harness.js';

/** Notification webhooks on the real stack: a local receiver, real runs, real Temporal retries. */

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A receiver on 127.0.0.1 whose answer per path is scripted by the test (status, or a held response). */
async function startReceiver() {
  const received: Received[] = [];
  const answers = new Map<string, (n: number) => number | Promise<number>>();
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      body += chunk;
    });
    req.on('end', () => {
      const path = req.url ?? '/';
      received.push({ path, headers: req.headers, body });
      const n = received.filter((r) => r.path === path).length;
      void Promise.resolve((answers.get(path) ?? (() => 200))(n)).then((status) =>
        res.writeHead(status).end(),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    received,
    url: (path: string, host = '127.0.0.1') => `http://${host}:${port}${path}`,
    answer: (path: string, fn: (n: number) => number | Promise<number>) => answers.set(path, fn),
    at: (path: string) => received.filter((r) => r.path === path),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

let h: Harness;
let receiver: Awaited<ReturnType<typeof startReceiver>>;
const secretName = `whsec-${randomUUID().slice(0, 8)}`;
const secretValue = `s3cr3t-${randomUUID()}`;

beforeAll(async () => {
  // Retries a fraction of a second apart, so that three attempts take about a second.
  process.env.WEBHOOK_RETRY_INITIAL_SECONDS = '0.2';
  process.env.WEBHOOK_DELIVERY_DEADLINE_SECONDS = '120';
  h = await startHarness();
  receiver = await startReceiver();
  const stored = await h.api('PUT', `/api/v1/secrets/${secretName}`, { value: secretValue });
  expect(stored.status).toBe(200);
});
afterAll(async () => {
  await receiver?.close();
  await h?.close();
});

interface WebhookBody {
  id: string;
  url: string;
  events: string[];
  ingestion_id: string | null;
  error_code?: string;
  field?: string;
}
interface DeliveriesBody {
  items: {
    event_id: string;
    event_type: string;
    attempt: number;
    status_code: number | null;
    error: string | null;
  }[];
  next_cursor: string | null;
}

async function createWebhook(body: Record<string, unknown>): Promise<WebhookBody> {
  const res = await h.api<WebhookBody>('POST', '/api/v1/webhooks', {
    secret: { secret: secretName },
    ...body,
  });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body;
}

/** An ingestion over a bucket with one small file. */
const ingestionWithOneFile = () => h.createIngestion({ 'a.jsonl': jsonLines(1, 3) });

/** The delivery of a run's event to a webhook, awaited on Temporal's word. */
const delivery = (webhookId: string, runId: string) =>
  h.client.workflow.getHandle(workflowIds.webhookDelivery(webhookId, `evt_${runId}`));

const deliveriesOf = async (webhookId: string) =>
  (await h.api<DeliveriesBody>('GET', `/api/v1/webhooks/${webhookId}/deliveries`)).body.items;

/** Stripe's check, written out here rather than imported: the receiver's point of view. */
function validSignature(header: string, body: string, secret: string): boolean {
  const parts = Object.fromEntries(header.split(',').map((p) => p.split('=')));
  const mac = createHmac('sha256', secret).update(`${parts.t}.${body}`).digest('hex');
  return /^\d+$/.test(parts.t ?? '') && parts.v1 === mac;
}

describe('webhook delivery', () => {
  it('delivers run.succeeded after a run, signed with the webhook’s secret', async () => {
    const ing = await ingestionWithOneFile();
    const hook = await createWebhook({
      url: receiver.url('/ok'),
      events: ['run.succeeded'],
      ingestion_id: ing.id,
    });
    const run = await h.runAndWait(ing.id);
    expect(run.status).toBe('SUCCESS');

    await expect(delivery(hook.id, run.id).result()).resolves.toEqual({ delivered: true, statusCode: 200 });
    const [got] = receiver.at('/ok');
    expect(got).toBeDefined();
    const header = got!.headers['autoloader-signature'] as string;
    expect(header).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    expect(validSignature(header, got!.body, secretValue)).toBe(true);
    expect(validSignature(header, got!.body, 'another secret')).toBe(false);
    const event = JSON.parse(got!.body) as {
      id: string;
      type: string;
      created_at: string;
      data: Record<string, unknown>;
    };
    expect(event).toMatchObject({
      id: `evt_${run.id}`,
      type: 'run.succeeded',
      data: {
        run_id: run.id,
        ingestion_id: ing.id,
        status: 'SUCCESS',
        files_processed: 1,
        records_written: 3,
      },
    });
    expect(event.created_at).toMatch(/Z$/);
    expect(got!.headers['autoloader-event-type']).toBe('run.succeeded');

    const log = await deliveriesOf(hook.id);
    expect(log).toEqual([
      {
        id: expect.any(Number),
        event_id: `evt_${run.id}`,
        event_type: 'run.succeeded',
        attempt: 1,
        status_code: 200,
        error: null,
        attempted_at: expect.stringMatching(/Z$/),
      },
    ]);
  });

  it('retries with backoff: a receiver failing twice gets three attempts, all in the delivery log', async () => {
    const ing = await ingestionWithOneFile();
    receiver.answer('/flaky', (n) => (n <= 2 ? 500 : 200));
    const hook = await createWebhook({
      url: receiver.url('/flaky'),
      events: ['run.succeeded'],
      ingestion_id: ing.id,
    });
    const run = await h.runAndWait(ing.id);

    await expect(delivery(hook.id, run.id).result()).resolves.toEqual({ delivered: true, statusCode: 200 });
    expect(receiver.at('/flaky')).toHaveLength(3);
    const log = await deliveriesOf(hook.id);
    expect(log.map((d) => [d.attempt, d.status_code, d.error])).toEqual([
      [3, 200, null],
      [2, 500, 'HTTP 500'],
      [1, 500, 'HTTP 500'],
    ]);
    // Paged: one attempt per page, newest first.
    const first = await h.api<DeliveriesBody>('GET', `/api/v1/webhooks/${hook.id}/deliveries?limit=1`);
    expect(first.body.items.map((d) => d.attempt)).toEqual([3]);
    const second = await h.api<DeliveriesBody>(
      'GET',
      `/api/v1/webhooks/${hook.id}/deliveries?limit=1&cursor=${first.body.next_cursor}`,
    );
    expect(second.body.items.map((d) => d.attempt)).toEqual([2]);
  });

  it('does not fire a run.failed webhook when the run succeeds', async () => {
    const ing = await ingestionWithOneFile();
    const onFailure = await createWebhook({
      url: receiver.url('/failed'),
      events: ['run.failed'],
      ingestion_id: ing.id,
    });
    const onSuccess = await createWebhook({
      url: receiver.url('/succeeded'),
      events: ['run.succeeded'],
      ingestion_id: ing.id,
    });
    const run = await h.runAndWait(ing.id);
    expect(run.status).toBe('SUCCESS');

    // Both were matched in the same step, before the run ended: once the one delivery is done, the
    // other would have been started too.
    await delivery(onSuccess.id, run.id).result();
    await expect(delivery(onFailure.id, run.id).describe()).rejects.toMatchObject({
      name: 'WorkflowNotFoundError',
    });
    expect(receiver.at('/failed')).toHaveLength(0);
    expect(await deliveriesOf(onFailure.id)).toEqual([]);
  });

  it('fires run.failed, and not run.succeeded, when every file of a run fails', async () => {
    const ing = await h.createIngestion({ 'bad.jsonl': 'this is not json\n' });
    const onFailure = await createWebhook({
      url: receiver.url('/run-failed'),
      events: ['run.failed'],
      ingestion_id: ing.id,
    });
    const onSuccess = await createWebhook({
      url: receiver.url('/run-ok'),
      events: ['run.succeeded'],
      ingestion_id: ing.id,
    });
    const run = await h.runAndWait(ing.id);
    expect(run.status).toBe('FAILED');

    await expect(delivery(onFailure.id, run.id).result()).resolves.toMatchObject({ delivered: true });
    const [got] = receiver.at('/run-failed');
    expect(JSON.parse(got!.body)).toMatchObject({
      type: 'run.failed',
      data: { run_id: run.id, status: 'FAILED', files_failed: 1 },
    });
    await expect(delivery(onSuccess.id, run.id).describe()).rejects.toMatchObject({
      name: 'WorkflowNotFoundError',
    });
  });

  it('does not make a run wait for a receiver that holds its answer', async () => {
    const ing = await ingestionWithOneFile();
    let release: () => void = () => undefined;
    const released = new Promise<number>((resolve) => {
      release = () => resolve(200);
    });
    receiver.answer('/slow', () => released);
    const hook = await createWebhook({
      url: receiver.url('/slow'),
      events: ['run.succeeded'],
      ingestion_id: ing.id,
    });
    const run = await h.runAndWait(ing.id);

    // The run has ended SUCCESS while its delivery is still waiting for the receiver's answer.
    expect(run.status).toBe('SUCCESS');
    const handle = delivery(hook.id, run.id);
    expect((await handle.describe()).status.name).toBe('RUNNING');
    expect(await deliveriesOf(hook.id)).toEqual([]);
    release();
    await expect(handle.result()).resolves.toEqual({ delivered: true, statusCode: 200 });
    expect((await deliveriesOf(hook.id)).map((d) => d.status_code)).toEqual([200]);
  });
});

describe('refresh and deletion events', () => {
  it('delivers refresh.completed when a swap refresh ends, then deletion.done when the old version is dropped', async () => {
    const ing = await ingestionWithOneFile();
    expect((await h.runAndWait(ing.id)).status).toBe('SUCCESS');
    const hook = await createWebhook({
      url: receiver.url('/lifecycle'),
      events: ['refresh.completed', 'deletion.done'],
      ingestion_id: ing.id,
    });
    const res = await h.api<{ operation_id: string; run_id: string }>(
      'POST',
      `/api/v1/ingestions/${ing.id}/full-refresh`,
      { confirm: true, strategy: 'swap', grace_period_seconds: 1 },
    );
    expect(res.status).toBe(202);
    await h.waitForIngestionIdle(ing.id);
    const op = await h.api<{
      status: string;
      operations: { operation: string; details: Record<string, unknown> }[];
    }>('GET', `/api/v1/operations/${res.body.operation_id}`);
    expect(op.body.status).toBe('success');
    const deletionId = op.body.operations.find((o) => o.operation === 'deletion_scheduled')!.details
      .deletion_id as string;

    const refreshed = h.client.workflow.getHandle(
      workflowIds.webhookDelivery(hook.id, `evt_${res.body.operation_id}`),
    );
    await expect(refreshed.result()).resolves.toMatchObject({ delivered: true });
    await h.client.workflow.getHandle(workflowIds.deletion(deletionId)).result();
    const deleted = h.client.workflow.getHandle(workflowIds.webhookDelivery(hook.id, `evt_${deletionId}`));
    await expect(deleted.result()).resolves.toMatchObject({ delivered: true });

    // Each event is delivered by its own workflow: arrival order is not promised (docs/webhooks.md).
    const bodies = receiver
      .at('/lifecycle')
      .map((r) => JSON.parse(r.body) as { type: string; data: Record<string, unknown> });
    expect(bodies.map((b) => b.type).sort()).toEqual(['deletion.done', 'refresh.completed']);
    const byType = (type: string) => bodies.find((b) => b.type === type)!.data;
    expect(byType('refresh.completed')).toMatchObject({
      operation_id: res.body.operation_id,
      ingestion_id: ing.id,
      status: 'success',
    });
    expect(byType('deletion.done')).toMatchObject({ deletion_id: deletionId, ingestion_id: ing.id });
    // The refresh's own run is a run too, but this webhook did not subscribe to run events.
    await expect(
      h.client.workflow.getHandle(workflowIds.webhookDelivery(hook.id, `evt_${res.body.run_id}`)).describe(),
    ).rejects.toMatchObject({ name: 'WorkflowNotFoundError' });
  });
});

describe('webhook addresses', () => {
  it('refuses a metadata address at creation (ENDPOINT_NOT_ALLOWED)', async () => {
    for (const url of ['http://169.254.169.254/latest/meta-data', 'https://169.254.169.254/hook']) {
      const res = await h.api<WebhookBody>('POST', '/api/v1/webhooks', {
        url,
        events: ['run.succeeded'],
        secret: { secret: secretName },
      });
      expect(res.status, url).toBe(400);
      expect(res.body).toMatchObject({ error_code: 'ENDPOINT_NOT_ALLOWED', field: 'url' });
    }
  });

  it('refuses loopback and plain http where the operator does not allow private endpoints', async () => {
    const strict = inProcessClient(h.makeApp({ address: { allowPrivate: false, allowList: [] } }), h.token);
    for (const url of ['http://example.com/hook', 'https://127.0.0.1/hook', 'https://localhost/hook']) {
      const res = await strict<WebhookBody>('POST', '/api/v1/webhooks', {
        url,
        events: ['run.succeeded'],
        secret: { secret: secretName },
      });
      expect(res.status, url).toBe(400);
      expect(res.body.error_code, url).toBe('ENDPOINT_NOT_ALLOWED');
    }
  });

  it('never sends to a stored webhook whose host now resolves to a refused address', async () => {
    // Created while allowed; then the operator's policy (or the name's DNS) refuses it.
    const hook = await createWebhook({
      url: receiver.url('/refused', 'localhost'),
      events: ['run.succeeded'],
    });
    const strictConfig = loadConfig(process.env);
    const deliver = makeDeliverWebhook(
      activityDepsFromConfig({ ...strictConfig, address: { allowPrivate: false, allowList: [] } }, h.sql),
    );
    const event = {
      id: `evt_${randomUUID()}`,
      type: 'run.succeeded' as const,
      created_at: new Date().toISOString(),
      data: {},
    };
    const failure = await new MockActivityEnvironment()
      .run(deliver, { webhookId: hook.id, event })
      .catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(ApplicationFailure);
    expect(failure).toMatchObject({ type: 'EndpointNotAllowed', nonRetryable: true });
    expect(receiver.at('/refused')).toHaveLength(0);
    const [attempt] = await deliveriesOf(hook.id);
    expect(attempt).toMatchObject({ event_id: event.id, status_code: null });
    expect(attempt!.error).toMatch(/loopback/);
  });
});

describe('webhook requests', () => {
  it('validates events and the secret reference, naming the field', async () => {
    const badEvent = await h.api<WebhookBody>('POST', '/api/v1/webhooks', {
      url: receiver.url('/x'),
      events: ['run.exploded'],
      secret: { secret: secretName },
    });
    expect(badEvent.status).toBe(400);
    expect(badEvent.body.error_code).toBe('VALIDATION_ERROR');
    const noSecret = await h.api<WebhookBody>('POST', '/api/v1/webhooks', {
      url: receiver.url('/x'),
      events: ['run.succeeded'],
      secret: { secret: 'no-such-secret' },
    });
    expect(noSecret.status).toBe(400);
    expect(noSecret.body).toMatchObject({ error_code: 'VALIDATION_ERROR', field: 'secret' });
    const noIngestion = await h.api<WebhookBody>('POST', '/api/v1/webhooks', {
      url: receiver.url('/x'),
      events: ['run.succeeded'],
      ingestion_id: 'ing_missing',
      secret: { secret: secretName },
    });
    expect(noIngestion.status).toBe(404);
    expect(noIngestion.body.error_code).toBe('INGESTION_NOT_FOUND');
  });

  it('keeps webhooks per tenant: another tenant can neither see nor delete one', async () => {
    const hook = await createWebhook({ url: receiver.url('/mine'), events: ['deletion.done'] });
    const otherTenant = `tenant_${randomUUID().slice(0, 8)}`;
    await ensureTenant(h.db, otherTenant, 'other tenant');
    const { token } = await createToken(h.db, {
      tenantId: otherTenant,
      name: 'other',
      subject: 'other@example.com',
    });
    const other = inProcessClient(h.app, token);

    expect((await other('GET', `/api/v1/webhooks/${hook.id}`)).status).toBe(404);
    expect((await other('GET', `/api/v1/webhooks/${hook.id}/deliveries`)).status).toBe(404);
    expect((await other('DELETE', `/api/v1/webhooks/${hook.id}`)).status).toBe(404);
    const listed = await other<{ items: WebhookBody[] }>('GET', '/api/v1/webhooks');
    expect(listed.body.items).toEqual([]);

    expect((await h.api('GET', `/api/v1/webhooks/${hook.id}`)).status).toBe(200);
    const mine = await h.api<{ items: WebhookBody[] }>('GET', '/api/v1/webhooks');
    expect(mine.body.items.map((w) => w.id)).toContain(hook.id);
    expect((await h.api('DELETE', `/api/v1/webhooks/${hook.id}`)).status).toBe(204);
    expect((await h.api('GET', `/api/v1/webhooks/${hook.id}`)).status).toBe(404);
  });
});
