import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createToken } from '../../src/auth/tokens.js';
import { createDb } from '../../src/db/client.js';
import { type Harness, jsonLines, type RunBody, startHarness } from '../helpers/harness.js';

/** Seed 000's three E2E workflows, and seed 001's error codes, through the API. */
let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

interface RefreshBody {
  status: string;
  run_id: string | null;
  operation_id: string;
  operations: { operation: string; status: string; details: Record<string, unknown> }[];
  impact: {
    files_to_process: number;
    files_skipped: number;
    estimated_data_size_bytes: number;
    estimated_cost_usd: number;
  };
  warnings: string[];
  notes: string[];
  would_perform?: { operation: string; details: Record<string, unknown> }[];
  error_code?: string;
  current_run_id?: string;
  details?: Record<string, unknown>;
}

async function ingestionWithFiles(files: number) {
  const bucket = await h.createBucket();
  for (let i = 0; i < files; i++)
    await h.putObject(bucket, `data-00${i + 1}.jsonl`, jsonLines(i * 1000, 1000));
  const table = `r_${Math.random().toString(36).slice(2, 10)}`;
  const res = await h.api<{ id: string }>('POST', '/api/v1/ingestions', {
    name: table,
    connection_id: await h.createS3Connection(),
    source: { bucket, pattern: '*.jsonl', format: 'jsonl' },
    destination: `raw.${table}`,
  });
  expect(res.status).toBe(201);
  const id = res.body.id;
  const first = await h.runAndWait(id);
  expect(first).toMatchObject({ status: 'SUCCESS', files_processed: files });
  const count = async () => {
    const [c] = await h.sql.unsafe<{ n: number; d: number; lo: number }[]>(
      `select count(*)::int as n, count(distinct id)::int as d, min(id)::int as lo from raw.${table}`,
    );
    return c;
  };
  return { id, bucket, table, count };
}

describe('full refresh (seed 000 E2E 1)', () => {
  it('drops the table, clears the history, reprocesses every file', async () => {
    const { id, count } = await ingestionWithFiles(3);
    const res = await h.api<RefreshBody>('POST', `/api/v1/ingestions/${id}/full-refresh`, { confirm: true });
    expect(res.status).toBe(202);
    expect(res.body.status).toBe('accepted');
    expect(res.body.operations.map((o) => [o.operation, o.status])).toEqual([
      ['table_dropped', 'success'],
      ['processed_files_cleared', 'success'],
      ['run_triggered', 'success'],
    ]);
    expect(res.body.operations[0]!.details).toMatchObject({ table_existed: true, row_count: 3000 });
    expect(res.body.operations[1]!.details).toMatchObject({ files_cleared: 3 });
    expect(res.body.impact).toMatchObject({ files_to_process: 3, files_skipped: 0 });

    await h.waitForIngestionIdle(id);
    expect(await count()).toEqual({ n: 3000, d: 3000, lo: 0 });
    const run = await h.api<RunBody>('GET', `/api/v1/runs/${res.body.run_id}`);
    expect(run.body).toMatchObject({ status: 'SUCCESS', files_processed: 3, records_written: 3000 });
    const files = await h.api<{ items: { run_id: string; status: string }[] }>(
      'GET',
      `/api/v1/ingestions/${id}/processed-files`,
    );
    expect(files.body.items).toHaveLength(3);
    expect(files.body.items.every((f) => f.run_id === res.body.run_id && f.status === 'SUCCESS')).toBe(true);

    const op = await h.api<{ status: string; operations: unknown[]; run_id: string }>(
      'GET',
      res.body.operation_id ? `/api/v1/operations/${res.body.operation_id}` : '',
    );
    expect(op.body).toMatchObject({ status: 'success', run_id: res.body.run_id });
    expect(op.body.operations).toHaveLength(3);
    const metrics = await (await h.app.request('/metrics')).text();
    expect(metrics).toMatch(
      /autoloader_refresh_operations_total\{operation_type="full_refresh",status="success"\} [1-9]/,
    );
    expect(metrics).toMatch(
      /autoloader_refresh_duration_seconds_count\{operation_type="full_refresh"\} [1-9]/,
    );
    expect(metrics).toContain('autoloader_refresh_cost_usd_bucket');
    const audit = await h.api<{ items: { action: string; result: string; operation_id: string }[] }>(
      'GET',
      `/api/v1/audit-events?ingestion_id=${id}`,
    );
    expect(audit.body.items[0]).toMatchObject({
      action: 'full_refresh',
      result: 'success',
      operation_id: res.body.operation_id,
    });
  });

  it('answers to the seed 000 alias /refresh/full as well', async () => {
    const { id } = await ingestionWithFiles(1);
    const res = await h.api<RefreshBody>('POST', `/api/v1/ingestions/${id}/refresh/full`, {
      confirm: true,
      auto_run: false,
    });
    expect(res.status).toBe(202);
    expect(res.body.run_id).toBeNull();
    expect(res.body.operations.map((o) => o.operation)).toEqual(['table_dropped', 'processed_files_cleared']);
  });
});

describe('fresh start (seed 000 E2E 2)', () => {
  it('recreates the table with only the files added since the last run', async () => {
    const { id, bucket, count } = await ingestionWithFiles(3);
    for (let i = 3; i < 5; i++) await h.putObject(bucket, `data-00${i + 1}.jsonl`, jsonLines(i * 1000, 1000));
    const res = await h.api<RefreshBody>('POST', `/api/v1/ingestions/${id}/fresh-start`, { confirm: true });
    expect(res.status).toBe(202);
    expect(res.body.operations.map((o) => o.operation)).toEqual(['table_dropped', 'run_triggered']);
    expect(res.body.impact).toMatchObject({ files_to_process: 2, files_skipped: 3 });
    await h.waitForIngestionIdle(id);

    expect(await count()).toEqual({ n: 2000, d: 2000, lo: 3000 });
    const run = await h.api<RunBody>('GET', `/api/v1/runs/${res.body.run_id}`);
    expect(run.body).toMatchObject({ files_processed: 2, records_written: 2000 });
    const files = await h.api<{ items: unknown[] }>(
      'GET',
      `/api/v1/ingestions/${id}/processed-files?status=SUCCESS`,
    );
    expect(files.body.items).toHaveLength(5);
  });
});

describe('dry run (seed 000 E2E 3)', () => {
  it('changes nothing, estimates from the real files, starts no run', async () => {
    const { id, count } = await ingestionWithFiles(3);
    const res = await h.api<RefreshBody>('POST', `/api/v1/ingestions/${id}/full-refresh`, {
      confirm: true,
      dry_run: true,
    });
    expect(res.status).toBe(200);
    expect(res.body.status).toBe('dry_run');
    const bytes = [0, 1, 2].reduce((s, i) => s + Buffer.byteLength(jsonLines(i * 1000, 1000)), 0);
    expect(res.body.impact).toMatchObject({ files_to_process: 3, estimated_data_size_bytes: bytes });
    expect(res.body.would_perform!.map((o) => o.operation)).toEqual([
      'table_dropped',
      'processed_files_cleared',
      'run_triggered',
    ]);
    expect(res.body.would_perform![0]!.details).toMatchObject({ current_row_count: 3000 });
    expect(res.body.warnings.some((w) => w.includes('will be deleted'))).toBe(true);

    expect(await count()).toEqual({ n: 3000, d: 3000, lo: 0 });
    const runs = await h.api<{ items: unknown[] }>('GET', `/api/v1/ingestions/${id}/runs`);
    expect(runs.body.items).toHaveLength(1);
    const files = await h.api<{ items: unknown[] }>('GET', `/api/v1/ingestions/${id}/processed-files`);
    expect(files.body.items).toHaveLength(3);
  });
});

describe('drop table', () => {
  it('drops with table size and row count, and is idempotent', async () => {
    const { id, table } = await ingestionWithFiles(1);
    const first = await h.api<RefreshBody>('DELETE', `/api/v1/ingestions/${id}/table?confirm=true`);
    expect(first.status).toBe(200);
    expect(first.body.details).toMatchObject({
      table_name: `raw.${table}`,
      table_existed: true,
      row_count: 1000,
    });
    const [exists] = await h.sql`select to_regclass(${`raw.${table}`}) as t`;
    expect(exists!.t).toBeNull();
    const again = await h.api<RefreshBody>('DELETE', `/api/v1/ingestions/${id}/table`, { confirm: true });
    expect(again.status).toBe(200);
    expect(again.body.details).toMatchObject({ table_existed: false });
    // History untouched: the next run does not reload the file.
    const files = await h.api<{ items: unknown[] }>(
      'GET',
      `/api/v1/ingestions/${id}/processed-files?status=SUCCESS`,
    );
    expect(files.body.items).toHaveLength(1);
  });
});

describe('error codes', () => {
  it('400 CONFIRMATION_REQUIRED without confirm or with confirm=false', async () => {
    const { id } = await ingestionWithFiles(1);
    for (const body of [{}, { confirm: false }, undefined]) {
      const res = await h.api('POST', `/api/v1/ingestions/${id}/full-refresh`, body);
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({ error_code: 'CONFIRMATION_REQUIRED' });
    }
    const drop = await h.api('DELETE', `/api/v1/ingestions/${id}/table`);
    expect(drop.body).toMatchObject({ error_code: 'CONFIRMATION_REQUIRED' });
    const runs = await h.api<{ items: unknown[] }>('GET', `/api/v1/ingestions/${id}/runs`);
    expect(runs.body.items).toHaveLength(1);
  });

  it('403 INSUFFICIENT_PERMISSIONS for a token without ingestion:refresh', async () => {
    const { id } = await ingestionWithFiles(1);
    const { token } = await createToken(h.db, {
      tenantId: h.tenantId,
      name: 'ro',
      subject: 'viewer',
      permissions: ['ingestion:read'],
    });
    const res = await h.app.request(`/api/v1/ingestions/${id}/fresh-start`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ confirm: true }),
    });
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ error_code: 'INSUFFICIENT_PERMISSIONS' });
  });

  it('404 INGESTION_NOT_FOUND for a missing ingestion', async () => {
    const res = await h.api('POST', '/api/v1/ingestions/ing_missing/full-refresh', { confirm: true });
    expect(res.status).toBe(404);
    expect(res.body).toMatchObject({ error_code: 'INGESTION_NOT_FOUND' });
  });

  it('409 RUN_IN_PROGRESS with current_run_id and X-Current-Run-ID for a refresh during a run', async () => {
    const table = `busy_${Math.random().toString(36).slice(2, 10)}`;
    // The run is held mid-load by a lock on its destination, so it is certainly running when the refresh arrives.
    const lock = await h.holdTableLock(table);
    const bucket = await h.createBucket();
    await h.putObject(bucket, 'f.jsonl', jsonLines(0, 10));
    const res = await h.api<{ id: string }>('POST', '/api/v1/ingestions', {
      name: table,
      connection_id: await h.createS3Connection(),
      source: { bucket, format: 'jsonl' },
      destination: `raw.${table}`,
    });
    const id = res.body.id;
    const run = await h.api<{ id: string }>('POST', `/api/v1/ingestions/${id}/run`);
    expect(run.status).toBe(202);

    const refused = await h.api<RefreshBody>('POST', `/api/v1/ingestions/${id}/full-refresh`, {
      confirm: true,
    });
    expect(refused.status).toBe(409);
    expect(refused.body).toMatchObject({ error_code: 'RUN_IN_PROGRESS', current_run_id: run.body.id });
    expect(refused.headers.get('x-current-run-id')).toBe(run.body.id);
    const drop = await h.api<RefreshBody>('DELETE', `/api/v1/ingestions/${id}/table?confirm=true`);
    expect(drop.status).toBe(409);

    await lock.release();
    await h.waitForIngestionIdle(id);
    const finished = await h.api<RunBody>('GET', `/api/v1/runs/${run.body.id}`);
    expect(finished.body).toMatchObject({ status: 'SUCCESS', records_written: 10 });
  });

  it('429 RATE_LIMITED after the hourly number of full refreshes', async () => {
    const { id } = await ingestionWithFiles(1);
    const app = h.makeApp({ refresh: { rateLimitPerHour: 2 } });
    const { token } = await createToken(h.db, { tenantId: h.tenantId, name: 'rl', subject: `rl-${id}` });
    const call = () =>
      app.request(`/api/v1/ingestions/${id}/full-refresh`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ confirm: true, auto_run: false }),
      });
    for (const accepted of [await call(), await call()])
      expect(accepted.status, await accepted.text()).toBe(202);
    const third = await call();
    expect(third.status).toBe(429);
    expect(third.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(await third.json()).toMatchObject({ error_code: 'RATE_LIMITED' });
  });

  it('400 DRY_RUN_REQUIRED above the cost threshold until a dry run was made', async () => {
    const { id } = await ingestionWithFiles(1);
    const app = h.makeApp({ refresh: { costPerGbUsd: 1_000_000_000, largeOperationUsd: 500 } });
    const call = (body: object) =>
      app.request(`/api/v1/ingestions/${id}/full-refresh`, {
        method: 'POST',
        headers: { authorization: `Bearer ${h.token}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const refused = await call({ confirm: true });
    expect(refused.status).toBe(400);
    expect(await refused.json()).toMatchObject({ error_code: 'DRY_RUN_REQUIRED' });
    const dry = await call({ confirm: true, dry_run: true });
    expect(dry.status).toBe(200);
    const dryBody = (await dry.json()) as RefreshBody;
    expect(dryBody.warnings.some((w) => w.startsWith('HIGH COST OPERATION'))).toBe(true);
    expect((await call({ confirm: true, auto_run: false })).status).toBe(202);
  });

  it('503 SERVICE_UNAVAILABLE when Temporal cannot be reached', async () => {
    const { id } = await ingestionWithFiles(1);
    const dead = new Client({
      connection: Connection.lazy({ address: '127.0.0.1:1', connectTimeout: '1s' }),
    });
    const res = await h.makeApp({ temporal: dead }).request(`/api/v1/ingestions/${id}/full-refresh`, {
      method: 'POST',
      headers: { authorization: `Bearer ${h.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ confirm: true }),
    });
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ error_code: 'SERVICE_UNAVAILABLE' });
  });

  it('503 SERVICE_UNAVAILABLE when Postgres cannot be reached', async () => {
    const dead = createDb('postgres://autoloader:autoloader@127.0.0.1:1/autoloader', { max: 1 });
    try {
      const res = await h.makeApp({ db: dead }).request('/api/v1/ingestions/ing_any/full-refresh', {
        method: 'POST',
        headers: { authorization: `Bearer ${h.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ confirm: true }),
      });
      expect(res.status).toBe(503);
      expect(await res.json()).toMatchObject({ error_code: 'SERVICE_UNAVAILABLE' });
    } finally {
      await dead.close();
    }
  });
});
