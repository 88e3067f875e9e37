import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { inProcessClient } from '../../src/api/in-process.js';
import { createToken, ensureTenant } from '../../src/auth/tokens.js';
import { workflowIds } from '../../src/temporal/ids.js';
import {
  type Harness,
  jsonLines,
  minioConnectionConfig,
  type RunBody,
  startHarness,
  storeMinioCredentials,
} from '../helpers/harness.js';

/** Seed 001's batch refresh, `POST /batch-refresh`, on the real stack. */
let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

interface Impact {
  files_to_process: number;
  estimated_data_size_bytes: number;
  estimated_cost_usd: number;
}
interface Entry {
  ingestion_id: string;
  status: string;
  operation_id?: string;
  run_id?: string | null;
  impact?: Impact;
  warnings?: string[];
  error?: { error_code: string; detail: string };
}
interface BatchBody {
  batch_id: string;
  operation_id?: string;
  workflow_id?: string;
  status: string;
  entries: Entry[];
  summary: {
    total: number;
    started: number;
    failed: number;
    cancelled: number;
    impact: Impact;
    warnings: string[];
  };
  error_code?: string;
}

const rowCount = async (table: string) => {
  const [c] = await h.sql.unsafe<{ n: number }[]>(`select count(*)::int as n from raw.${table}`);
  return c!.n;
};
const operationsOf = async (ids: string[]) => {
  const [c] = await h.sql<{ n: number }[]>`
    select count(*)::int as n from autoloader.operations where ingestion_id in ${h.sql(ids)}`;
  return c!.n;
};

/** The batch's workflow to its end; its result is the batch operation's. */
const batchEnded = (body: BatchBody) => h.client.workflow.getHandle(body.workflow_id!).result();

/** An ingestion loaded once, with `files` files of `rows` rows. */
async function loaded(files: number, rows = 10) {
  const contents: Record<string, string> = {};
  for (let i = 0; i < files; i++) contents[`f${i}.jsonl`] = jsonLines(i * rows, rows);
  const ing = await h.createIngestion(contents, {}, 'br');
  expect(await h.runAndWait(ing.id)).toMatchObject({ status: 'SUCCESS', files_processed: files });
  const bytes = Object.values(contents).reduce((s, c) => s + Buffer.byteLength(c), 0);
  return { ...ing, bytes };
}

/** An ingestion whose run is held mid-load by a lock on its table: certainly busy until release. */
async function busy() {
  const table = `brbusy_${Math.random().toString(36).slice(2, 10)}`;
  const lock = await h.holdTableLock(table);
  const bucket = await h.createBucket();
  await h.putObject(bucket, 'f.jsonl', jsonLines(0, 10));
  const res = await h.api<{ id: string }>('POST', '/api/v1/ingestions', {
    name: table,
    connection_id: await h.createS3Connection(),
    source: { bucket, format: 'jsonl' },
    destination: `raw.${table}`,
  });
  expect(res.status).toBe(201);
  const run = await h.api<{ id: string }>('POST', `/api/v1/ingestions/${res.body.id}/run`);
  expect(run.status).toBe(202);
  return { id: res.body.id, table, runId: run.body.id, lock };
}

/** Another tenant's ingestion, made through the API with that tenant's own token. */
async function otherTenantsIngestion(): Promise<string> {
  const s3 = inject('s3');
  const tenantId = `tenant_other_${Math.random().toString(36).slice(2, 8)}`;
  await ensureTenant(h.db, tenantId, 'other tenant', { local_roots: ['/tmp'] });
  const { token } = await createToken(h.db, { tenantId, name: 'other', subject: 'other@example.com' });
  const api = inProcessClient(h.app, token);
  await storeMinioCredentials(api, s3);
  const conn = await api<{ id: string }>('POST', '/api/v1/connections', {
    name: 'minio-other',
    kind: 's3',
    config: minioConnectionConfig(s3),
  });
  expect(conn.status).toBe(201);
  const bucket = await h.createBucket();
  const ing = await api<{ id: string }>('POST', '/api/v1/ingestions', {
    name: 'other',
    connection_id: conn.body.id,
    source: { bucket, format: 'jsonl' },
    destination: `raw.other_${bucket.replaceAll('-', '_')}`.slice(0, 60),
  });
  expect(ing.status).toBe(201);
  return ing.body.id;
}

describe('batch refresh', () => {
  it('refreshes the idle ingestion and reports the busy and the missing ones in their entries', async () => {
    const idle = await loaded(2);
    await h.sql.unsafe(
      `insert into raw.${idle.table} (id, _source_file, _run_id) values (999999, 'stray', 'stray')`,
    );
    const held = await busy();
    const foreign = await otherTenantsIngestion();
    const ids = [idle.id, held.id, 'ing_missing', foreign];

    const res = await h.api<BatchBody>('POST', '/api/v1/batch-refresh', {
      ingestion_ids: ids,
      operation: 'full_refresh',
      confirm: true,
    });
    expect(res.status).toBe(202);
    expect(res.body.status).toBe('partial_failure');
    expect(res.body.entries.map((e) => [e.ingestion_id, e.status, e.error?.error_code])).toEqual([
      [idle.id, 'accepted', undefined],
      [held.id, 'failed', 'RUN_IN_PROGRESS'],
      ['ing_missing', 'failed', 'INGESTION_NOT_FOUND'],
      [foreign, 'failed', 'INGESTION_NOT_FOUND'],
    ]);
    expect(res.body.summary).toMatchObject({ total: 4, started: 1, failed: 3, cancelled: 0 });
    const [first] = res.body.entries;
    expect(first!.impact).toMatchObject({ files_to_process: 2 });

    // One batch operation and workflow; each member a child of it under the ingestion's own id.
    expect(res.body.operation_id).toBe(res.body.batch_id);
    await batchEnded(res.body);
    const member = await h.client.workflow.getHandle(workflowIds.ingestion(idle.id)).describe();
    expect(member.parentExecution?.workflowId).toBe(res.body.workflow_id);
    const batchOp = await h.api<{ type: string; status: string; result: { entries: Entry[] } }>(
      'GET',
      `/api/v1/operations/${res.body.operation_id}`,
    );
    expect(batchOp.body).toMatchObject({ type: 'batch_refresh', status: 'partial_failure' });
    expect(batchOp.body.result.entries.map((e) => [e.ingestion_id, e.status, e.error?.error_code])).toEqual([
      [idle.id, 'success', undefined],
      [held.id, 'failed', 'RUN_IN_PROGRESS'],
      ['ing_missing', 'failed', 'INGESTION_NOT_FOUND'],
      [foreign, 'failed', 'INGESTION_NOT_FOUND'],
    ]);
    expect(await rowCount(idle.table)).toBe(20);
    const run = await h.api<RunBody>('GET', `/api/v1/runs/${first!.run_id}`);
    expect(run.body).toMatchObject({ status: 'SUCCESS', files_processed: 2, records_written: 20 });
    const op = await h.api<{ status: string }>('GET', `/api/v1/operations/${first!.operation_id}`);
    expect(op.body.status).toBe('success');

    // The busy ingestion was not touched: its run goes on and finishes.
    expect(await operationsOf([held.id, foreign])).toBe(0);
    await held.lock.release();
    await h.waitForIngestionIdle(held.id);
    const heldRun = await h.api<RunBody>('GET', `/api/v1/runs/${held.runId}`);
    expect(heldRun.body).toMatchObject({ status: 'SUCCESS', records_written: 10 });
  });

  it('dry run: previews each ingestion and sums the impact and the warnings, changing nothing', async () => {
    const a = await loaded(2);
    const b = await loaded(3);
    const res = await h.api<BatchBody>('POST', '/api/v1/batch-refresh', {
      ingestion_ids: [a.id, b.id, 'ing_missing'],
      operation: 'full_refresh',
      confirm: true,
      dry_run: true,
    });
    expect(res.status).toBe(200);
    expect(res.body.status).toBe('dry_run');
    expect(res.body.entries.map((e) => [e.status, e.impact?.files_to_process])).toEqual([
      ['dry_run', 2],
      ['dry_run', 3],
      ['failed', undefined],
    ]);
    expect(res.body.summary.impact).toMatchObject({
      files_to_process: 5,
      estimated_data_size_bytes: a.bytes + b.bytes,
    });
    expect(res.body.summary.warnings).toContain(`${a.id}: This operation will reprocess ALL 2 files (0 GB)`);
    expect(res.body.summary.warnings.some((w) => w.startsWith(`${b.id}: Current table`))).toBe(true);
    expect(res.body.summary.warnings).toContain('1 of 3 ingestions could not be refreshed');
    expect(await operationsOf([a.id, b.id])).toBe(0);
    expect(await rowCount(a.table)).toBe(20);
  });

  it('counts as one request against the full-refresh rate limit', async () => {
    const ings = [await loaded(1), await loaded(1), await loaded(1)];
    const app = h.makeApp({ refresh: { rateLimitPerHour: 2 } });
    const { token } = await createToken(h.db, {
      tenantId: h.tenantId,
      name: 'rl',
      subject: `rl-${ings[0]!.id}`,
    });
    const api = inProcessClient(app, token);
    const batch = () =>
      api<BatchBody>('POST', '/api/v1/batch-refresh', {
        ingestion_ids: ings.map((i) => i.id),
        operation: 'full_refresh',
        confirm: true,
        auto_run: false,
      });
    const first = await batch();
    expect(first.status).toBe(202);
    expect(first.body.entries.map((e) => e.status)).toEqual(['accepted', 'accepted', 'accepted']);
    await batchEnded(first.body);
    // Three refreshes, one request: a single full refresh is still within the limit of 2...
    const single = await api('POST', `/api/v1/ingestions/${ings[0]!.id}/full-refresh`, {
      confirm: true,
      auto_run: false,
    });
    expect(single.status).toBe(202);
    // ...and then the limit is reached, for a batch as for a single refresh.
    const limited = await batch();
    expect(limited.status).toBe(429);
    expect(limited.body).toMatchObject({ error_code: 'RATE_LIMITED' });
  });

  it('applies the large-operation rule to the total: refused until a batch dry run was made', async () => {
    const a = await loaded(1, 100);
    const b = await loaded(1, 100);
    // Each ingestion costs about $100, the batch about $200; the threshold sits between.
    const costPerGbUsd = (100 * 1024 ** 3) / a.bytes;
    const app = h.makeApp({ refresh: { costPerGbUsd, largeOperationUsd: 150 } });
    const { token } = await createToken(h.db, { tenantId: h.tenantId, name: 'lo', subject: `lo-${a.id}` });
    const api = inProcessClient(app, token);
    // With a run: a refresh that loads nothing costs nothing.
    const body = { ingestion_ids: [a.id, b.id], operation: 'full_refresh', confirm: true };

    const refused = await api<BatchBody>('POST', '/api/v1/batch-refresh', body);
    expect(refused.status).toBe(400);
    expect(refused.body).toMatchObject({ error_code: 'DRY_RUN_REQUIRED' });
    expect(await operationsOf([a.id, b.id])).toBe(0);

    const dry = await api<BatchBody>('POST', '/api/v1/batch-refresh', { ...body, dry_run: true });
    expect(dry.status).toBe(200);
    expect(dry.body.summary.impact.estimated_cost_usd).toBeGreaterThan(150);
    const accepted = await api<BatchBody>('POST', '/api/v1/batch-refresh', body);
    expect(accepted.status).toBe(202);
    expect(accepted.body.summary).toMatchObject({ started: 2, failed: 0 });
    await batchEnded(accepted.body);
    expect(await rowCount(a.table)).toBe(100);
  });

  it('listed order: each refresh starts after the previous one has ended (times from Temporal)', async () => {
    const a = await loaded(2);
    const b = await loaded(1);
    const res = await h.api<BatchBody>('POST', '/api/v1/batch-refresh', {
      ingestion_ids: [a.id, b.id],
      operation: 'full_refresh',
      confirm: true,
      order: 'listed',
    });
    expect(res.status).toBe(202);
    expect(res.body.entries.map((e) => [e.ingestion_id, e.status])).toEqual([
      [a.id, 'accepted'],
      [b.id, 'accepted'],
    ]);
    const ended = (await batchEnded(res.body)) as { entries: Entry[] };
    expect(ended.entries.map((e) => [e.ingestion_id, e.status])).toEqual([
      [a.id, 'success'],
      [b.id, 'success'],
    ]);
    const [first, second] = await Promise.all(
      [a.id, b.id].map((id) => h.client.workflow.getHandle(workflowIds.ingestion(id)).describe()),
    );
    expect(first!.memo).toMatchObject({ operationId: res.body.entries[0]!.operation_id });
    expect(second!.memo).toMatchObject({ operationId: res.body.entries[1]!.operation_id });
    expect(first!.closeTime!.getTime()).toBeLessThanOrEqual(second!.startTime.getTime());
    expect(await rowCount(a.table)).toBe(20);
    expect(await rowCount(b.table)).toBe(10);
  });

  it('stop_on_error with the listed order starts nothing listed after a refusal', async () => {
    const a = await loaded(1);
    const res = await h.api<BatchBody>('POST', '/api/v1/batch-refresh', {
      ingestion_ids: ['ing_missing', a.id],
      operation: 'fresh_start',
      confirm: true,
      stop_on_error: true,
      order: 'listed',
    });
    expect(res.status).toBe(202);
    expect(res.body.status).toBe('failed');
    expect(res.body.entries.map((e) => [e.ingestion_id, e.status])).toEqual([
      ['ing_missing', 'failed'],
      [a.id, 'cancelled'],
    ]);
    expect(res.body.summary).toMatchObject({ started: 0, failed: 1, cancelled: 1 });
    expect(await operationsOf([a.id])).toBe(0);
  });

  it('refuses a missing confirm, repeated ids and a token without ingestion:refresh', async () => {
    const a = await loaded(1);
    const noConfirm = await h.api('POST', '/api/v1/batch-refresh', {
      ingestion_ids: [a.id],
      operation: 'full_refresh',
    });
    expect(noConfirm.status).toBe(400);
    expect(noConfirm.body).toMatchObject({ error_code: 'CONFIRMATION_REQUIRED' });
    const repeated = await h.api('POST', '/api/v1/batch-refresh', {
      ingestion_ids: [a.id, a.id],
      operation: 'full_refresh',
      confirm: true,
    });
    expect(repeated.status).toBe(400);
    expect(repeated.body).toMatchObject({ error_code: 'VALIDATION_ERROR', field: 'ingestion_ids' });

    const { token } = await createToken(h.db, {
      tenantId: h.tenantId,
      name: 'reader',
      subject: 'reader',
      permissions: ['ingestion:read'],
    });
    const forbidden = await inProcessClient(h.app, token)('POST', '/api/v1/batch-refresh', {
      ingestion_ids: [a.id],
      operation: 'full_refresh',
      confirm: true,
    });
    expect(forbidden.status).toBe(403);
    expect(forbidden.body).toMatchObject({ error_code: 'INSUFFICIENT_PERMISSIONS' });
    expect(await operationsOf([a.id])).toBe(0);
  });
});
