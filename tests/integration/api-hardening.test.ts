import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/api/app.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/lib/logger.js';
import { serviceDepsFromConfig } from '../../src/services/deps.js';
import { type Harness, startHarness } from '../helpers/harness.js';

/** Requests that got an undocumented 5xx, or were silently misread, before. */
let h: Harness;
let ingestionId: string;
beforeAll(async () => {
  h = await startHarness();
  ingestionId = (
    await h.createIngestion(
      {},
      {
        prefix: 'in/',
        pattern: '*.csv',
        format: 'csv',
        format_options: { delimiter: ';' },
        schema_mode: 'rescue',
      },
      'hard',
    )
  ).id;
});
afterAll(async () => {
  await h?.close();
});

type ErrorBody = { error_code: string; field?: string; detail: string };
const raw = (method: string, path: string, body: string, contentType: string) =>
  h.app.request(path, {
    method,
    body,
    headers: { authorization: `Bearer ${h.token}`, 'content-type': contentType },
  });

describe('no undocumented 5xx', () => {
  it('answers 415 to a body that is not JSON, on POST and PATCH', async () => {
    for (const [method, path] of [
      ['POST', '/api/v1/ingestions'],
      ['PATCH', `/api/v1/ingestions/${ingestionId}`],
    ] as const) {
      const res = await raw(method, path, 'name=x', 'text/plain');
      expect(res.status, path).toBe(415);
      expect(await res.json()).toMatchObject({ error_code: 'UNSUPPORTED_MEDIA_TYPE' });
    }
  });

  it('answers 400 to a JSON null body, and to a cron Temporal would refuse', async () => {
    const nul = await raw('POST', `/api/v1/ingestions/${ingestionId}/reprocess`, 'null', 'application/json');
    expect(nul.status).toBe(400);
    const cron = await h.api<ErrorBody>('PUT', `/api/v1/ingestions/${ingestionId}/schedule`, { cron: '0' });
    expect(cron.status).toBe(400);
    expect(cron.body).toMatchObject({ error_code: 'VALIDATION_ERROR', field: 'cron' });
    const tz = await h.api<ErrorBody>('PUT', `/api/v1/ingestions/${ingestionId}/schedule`, {
      cron: '0 2 * * *',
      timezone: 'Mars/Olympus',
    });
    expect(tz.body).toMatchObject({ error_code: 'VALIDATION_ERROR', field: 'timezone' });
  });

  it('answers 409 NAME_TAKEN for a duplicate connection or ingestion name', async () => {
    const conn = { name: 'dup', kind: 'local', config: { path: '/tmp' } };
    expect((await h.api('POST', '/api/v1/connections', conn)).status).toBe(201);
    const again = await h.api<ErrorBody>('POST', '/api/v1/connections', conn);
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({ error_code: 'NAME_TAKEN', field: 'name' });
    const [row] = await h.sql<{ name: string; connectionId: string }[]>`
      select name, connection_id as "connectionId" from autoloader.ingestions where id = ${ingestionId}`;
    const dup = await h.api<ErrorBody>('POST', '/api/v1/ingestions', {
      name: row!.name,
      connection_id: row!.connectionId,
      source: { bucket: 'b', format: 'jsonl' },
      destination: 'raw.some_other_table',
    });
    expect(dup.status).toBe(409);
    expect(dup.body).toMatchObject({ error_code: 'NAME_TAKEN', field: 'name' });
  });

  it('answers 413 to a body past the limit, and 400 to an unknown cursor', async () => {
    const big = await raw(
      'POST',
      '/api/v1/ingestions',
      JSON.stringify({ name: 'x'.repeat(2 * 1024 * 1024) }),
      'application/json',
    );
    expect(big.status).toBe(413);
    expect(await big.json()).toMatchObject({ error_code: 'BODY_TOO_LARGE' });
    const runs = await h.api<ErrorBody>(
      'GET',
      `/api/v1/ingestions/${ingestionId}/runs?cursor=run_doesnotexist`,
    );
    expect(runs.status).toBe(400);
    expect(runs.body.field).toBe('cursor');
    const files = await h.api<ErrorBody>(
      'GET',
      `/api/v1/ingestions/${ingestionId}/processed-files?cursor=abc`,
    );
    expect(files.status).toBe(400);
  });
});

describe('unknown fields are refused, naming them', () => {
  it.each([
    ['a typo in the source', { source: { schema_mod: 'fail' } }, 'source.schema_mod'],
    ['a typo at the top', { sourc: {} }, 'sourc'],
    [
      'a typo in the CSV options',
      { source: { format_options: { delimeter: ',' } } },
      'source.format_options.delimeter',
    ],
  ])('%s', async (_label, body, field) => {
    const res = await h.api<ErrorBody>('PATCH', `/api/v1/ingestions/${ingestionId}`, body);
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ error_code: 'VALIDATION_ERROR', field });
  });

  it('refuses multi-byte and line-break CSV characters before a file can fail on them', async () => {
    for (const delimiter of ['€', '\n', 'ab']) {
      const res = await h.api<ErrorBody>('PATCH', `/api/v1/ingestions/${ingestionId}`, {
        source: { format_options: { delimiter } },
      });
      expect(res.status, JSON.stringify(delimiter)).toBe(400);
      expect(res.body.field).toBe('source.format_options.delimiter');
    }
  });
});

describe('PATCH merges', () => {
  const source = async () =>
    (await h.api<{ source: Record<string, unknown> }>('GET', `/api/v1/ingestions/${ingestionId}`)).body
      .source;

  it.each([
    ['since', { since: '2025-01-01T00:00:00Z' }],
    ['prefix', { prefix: 'other/' }],
    ['pattern', { pattern: '*.tsv' }],
    ['schema_mode', { schema_mode: 'fail' }],
    ['bucket', { bucket: 'another-bucket' }],
    ['format', { format: 'jsonl' }],
    ['format_options.header', { format_options: { header: false } }],
  ])('changes only %s', async (_label, patch) => {
    const before = await source();
    const res = await h.api('PATCH', `/api/v1/ingestions/${ingestionId}`, { source: patch });
    expect(res.status).toBe(200);
    const after = await source();
    const expected = { ...before, ...patch } as Record<string, unknown>;
    if ('format_options' in patch)
      expected.format_options = { ...(before.format_options as object), ...(patch.format_options as object) };
    expect(after).toEqual(expected);
  });
});

describe('schedules have a floor', () => {
  it('refuses runs more often than every 60 s and refreshes more often than hourly', async () => {
    const fast = await h.api<ErrorBody>('PUT', `/api/v1/ingestions/${ingestionId}/schedule`, {
      interval_seconds: 1,
    });
    expect(fast.status).toBe(400);
    expect(fast.body.field).toBe('interval_seconds');
    const everyMinute = await h.api<ErrorBody>('PUT', `/api/v1/ingestions/${ingestionId}/schedule`, {
      cron: '* * * * *',
      operation: 'full_refresh',
    });
    expect(everyMinute.status).toBe(400);
    expect(
      (await h.api('PUT', `/api/v1/ingestions/${ingestionId}/schedule`, { cron: '* * * * *' })).status,
    ).toBe(200);
    await h.api('DELETE', `/api/v1/ingestions/${ingestionId}/schedule`);
  });

  it('caps the schedules of a tenant', async () => {
    await h.sql`update autoloader.tenants set policy = policy || '{"max_schedules": 0}' where id = ${h.tenantId}`;
    try {
      const res = await h.api<ErrorBody>('PUT', `/api/v1/ingestions/${ingestionId}/schedule`, {
        cron: '0 2 * * *',
      });
      expect(res.status).toBe(400);
      expect(res.body.detail).toMatch(/at most 0 schedules/);
    } finally {
      await h.sql`update autoloader.tenants set policy = policy - 'max_schedules' where id = ${h.tenantId}`;
    }
  });
});

describe('/metrics', () => {
  it('can require a token', async () => {
    const config = loadConfig({ ...process.env, METRICS_TOKEN: 'scrape-me' });
    const app = createApp({
      ...serviceDepsFromConfig(config, { db: h.db, sql: h.sql, temporal: h.client }),
      log: createLogger('silent'),
    });
    expect((await app.request('/metrics')).status).toBe(401);
    const ok = await app.request('/metrics', { headers: { authorization: 'Bearer scrape-me' } });
    expect(ok.status).toBe(200);
    expect(await ok.text()).toContain('autoloader_runs_total');
  });
});
