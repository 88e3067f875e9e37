import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createToken } from '../../src/auth/tokens.js';
import { type Harness, jsonLines, type RunBody, startHarness } from '../helpers/harness.js';

/** Seed 001's conditional refresh, `POST /ingestions/{id}/refresh-if`, on the real stack. */
let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

interface Facts {
  file_count: number;
  new_file_count: number;
  new_bytes: number;
  failed_file_count: number;
  hours_since_last_success: number | null;
  table_row_count: number | null;
  schema_changed: boolean;
}
interface RefreshIfBody {
  condition: string;
  result: boolean;
  facts: Facts;
  started: boolean;
  operation?: { status: string; operation_id?: string; run_id?: string | null; impact: object };
  error_code?: string;
  field?: string;
  position?: number;
  detail?: string;
}

const rowCount = async (table: string) => {
  const [c] = await h.sql.unsafe<{ n: number }[]>(`select count(*)::int as n from raw.${table}`);
  return c!.n;
};
const operationsOf = async (id: string) => {
  const [c] = await h.sql<{ n: number }[]>`
    select count(*)::int as n from autoloader.operations where ingestion_id = ${id}`;
  return c!.n;
};

describe('conditional refresh', () => {
  it('runs the full refresh when the condition holds: the table is rebuilt from every file', async () => {
    const files = {
      'a.jsonl': jsonLines(0, 100),
      'b.jsonl': jsonLines(100, 100),
      'c.jsonl': jsonLines(200, 100),
    };
    const { id, table } = await h.createIngestion(files, { pattern: '*.jsonl' }, 'cif');
    expect(await h.runAndWait(id)).toMatchObject({ status: 'SUCCESS', files_processed: 3 });
    // A row no file holds: only a rebuilt table is without it.
    await h.sql.unsafe(
      `insert into raw.${table} (id, _source_file, _run_id) values (999999, 'stray', 'stray')`,
    );

    const res = await h.api<RefreshIfBody>('POST', `/api/v1/ingestions/${id}/refresh-if`, {
      condition: 'file_count >= 3 AND table_row_count > 300 && !schema_changed',
      operation: 'full_refresh',
      confirm: true,
    });
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({
      condition: '(file_count >= 3) and (table_row_count > 300) and not schema_changed',
      result: true,
      started: true,
    });
    expect(res.body.facts).toMatchObject({
      file_count: 3,
      new_file_count: 0,
      new_bytes: 0,
      failed_file_count: 0,
      table_row_count: 301,
      schema_changed: false,
    });
    expect(res.body.facts.hours_since_last_success).toBeGreaterThanOrEqual(0);
    expect(res.body.facts.hours_since_last_success).toBeLessThan(1);
    expect(res.body.operation).toMatchObject({ status: 'accepted', impact: { files_to_process: 3 } });

    await h.waitForIngestionIdle(id);
    expect(await rowCount(table)).toBe(300);
    const run = await h.api<RunBody>('GET', `/api/v1/runs/${res.body.operation!.run_id}`);
    expect(run.body).toMatchObject({ status: 'SUCCESS', files_processed: 3, records_written: 300 });
    const op = await h.api<{ status: string; type: string }>(
      'GET',
      `/api/v1/operations/${res.body.operation!.operation_id}`,
    );
    expect(op.body).toMatchObject({ status: 'success' });
  });

  it('changes nothing when the condition is false, and reports the facts as they are', async () => {
    const bad = `${jsonLines(50, 10)}{"id": 60, "user": "broken\n`;
    const { id, bucket, table } = await h.createIngestion(
      { 'good.jsonl': jsonLines(0, 50), 'bad.jsonl': bad },
      {},
      'cif',
    );
    expect(await h.runAndWait(id)).toMatchObject({ status: 'PARTIAL_SUCCESS', files_failed: 1 });
    const added = jsonLines(1000, 7);
    await h.putObject(bucket, 'new.jsonl', added);

    const res = await h.api<RefreshIfBody>('POST', `/api/v1/ingestions/${id}/refresh-if`, {
      condition: 'new_file_count > 5 or hours_since_last_success > 1',
      operation: 'fresh_start',
      confirm: true,
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ result: false, started: false });
    expect(res.body.operation).toBeUndefined();
    expect(res.body.facts).toEqual({
      file_count: 3,
      new_file_count: 1,
      new_bytes: Buffer.byteLength(added),
      failed_file_count: 1,
      // No run has succeeded (the first was a partial success): null, and "> 1" is false.
      hours_since_last_success: null,
      table_row_count: 50,
      schema_changed: false,
    });

    expect(await rowCount(table)).toBe(50);
    expect(await operationsOf(id)).toBe(0);
    const runs = await h.api<{ items: unknown[] }>('GET', `/api/v1/ingestions/${id}/runs`);
    expect(runs.body.items).toHaveLength(1);
  });

  it('previews the refresh with dry_run when the condition holds, starting nothing', async () => {
    const { id, table } = await h.createIngestion({ 'a.jsonl': jsonLines(0, 20) }, {}, 'cif');
    await h.runAndWait(id);
    const res = await h.api<RefreshIfBody>('POST', `/api/v1/ingestions/${id}/refresh-if`, {
      condition: 'table_row_count == 20',
      operation: 'full_refresh',
      confirm: true,
      dry_run: true,
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ result: true, started: false, operation: { status: 'dry_run' } });
    expect(await rowCount(table)).toBe(20);
    expect(await operationsOf(id)).toBe(0);
  });

  it('schema_changed: true once new columns were loaded, false again after a full refresh', async () => {
    const { id, bucket } = await h.createIngestion({ 'a.jsonl': jsonLines(0, 10) }, {}, 'cif');
    await h.runAndWait(id);
    const facts = async () =>
      (
        await h.api<RefreshIfBody>('POST', `/api/v1/ingestions/${id}/refresh-if`, {
          condition: 'schema_changed',
          operation: 'full_refresh',
          confirm: true,
          dry_run: true,
        })
      ).body;
    expect(await facts()).toMatchObject({ result: false, facts: { schema_changed: false } });

    await h.putObject(bucket, 'b.jsonl', `${JSON.stringify({ id: 100, country: 'NL' })}\n`);
    expect(await h.runAndWait(id)).toMatchObject({ status: 'SUCCESS', files_processed: 1 });
    expect(await facts()).toMatchObject({ result: true, facts: { schema_changed: true } });

    const res = await h.api<RefreshIfBody>('POST', `/api/v1/ingestions/${id}/refresh-if`, {
      condition: 'schema_changed and file_count == 2',
      operation: 'full_refresh',
      confirm: true,
    });
    expect(res.status).toBe(202);
    await h.waitForIngestionIdle(id);
    expect(await facts()).toMatchObject({
      result: false,
      facts: { schema_changed: false, table_row_count: 11 },
    });
  });

  it('409 RUN_IN_PROGRESS while a run holds the ingestion, whatever the condition', async () => {
    const table = `cifbusy_${Math.random().toString(36).slice(2, 10)}`;
    const lock = await h.holdTableLock(table);
    const bucket = await h.createBucket();
    await h.putObject(bucket, 'f.jsonl', jsonLines(0, 10));
    const created = await h.api<{ id: string }>('POST', '/api/v1/ingestions', {
      name: table,
      connection_id: await h.createS3Connection(),
      source: { bucket, format: 'jsonl' },
      destination: `raw.${table}`,
    });
    const id = created.body.id;
    const run = await h.api<{ id: string }>('POST', `/api/v1/ingestions/${id}/run`);
    expect(run.status).toBe(202);
    for (const condition of ['true', 'false']) {
      const res = await h.api<RefreshIfBody>('POST', `/api/v1/ingestions/${id}/refresh-if`, {
        condition,
        operation: 'full_refresh',
        confirm: true,
      });
      expect(res.status, condition).toBe(409);
      expect(res.body, condition).toMatchObject({
        error_code: 'RUN_IN_PROGRESS',
        current_run_id: run.body.id,
      });
    }
    await lock.release();
    await h.waitForIngestionIdle(id);
    expect(await operationsOf(id)).toBe(0);
  });

  it('400 VALIDATION_ERROR naming the field and the position of a bad expression', async () => {
    const { id } = await h.createIngestion({ 'a.jsonl': jsonLines(0, 5) }, {}, 'cif');
    const cases: [string, number, RegExp][] = [
      ['new_file_count = 3', 15, /write "==" to test equality/],
      ['file_count > 100 and', 20, /found end of input/],
      ['file_cont > 1', 0, /unknown fact "file_cont".*did you mean file_count\?/],
      ['schema_changed > true', 15, /does not apply to booleans/],
      ['', 0, /empty/],
    ];
    for (const [condition, position, message] of cases) {
      const res = await h.api<RefreshIfBody>('POST', `/api/v1/ingestions/${id}/refresh-if`, {
        condition,
        operation: 'full_refresh',
        confirm: true,
      });
      expect(res.status, condition).toBe(400);
      expect(res.body, condition).toMatchObject({
        error_code: 'VALIDATION_ERROR',
        field: 'condition',
        position,
      });
      expect(res.body.detail, condition).toContain(`at position ${position}: `);
      expect(res.body.detail, condition).toMatch(message);
    }
    expect(await operationsOf(id)).toBe(0);
  });

  it('400 CONFIRMATION_REQUIRED without confirm, even when the condition holds', async () => {
    const { id } = await h.createIngestion({ 'a.jsonl': jsonLines(0, 5) }, {}, 'cif');
    for (const confirm of [undefined, false]) {
      const res = await h.api('POST', `/api/v1/ingestions/${id}/refresh-if`, {
        condition: 'true',
        operation: 'full_refresh',
        ...(confirm === undefined ? {} : { confirm }),
      });
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({ error_code: 'CONFIRMATION_REQUIRED' });
    }
    expect(await operationsOf(id)).toBe(0);
  });

  it('403 INSUFFICIENT_PERMISSIONS without ingestion:refresh, 404 for a missing ingestion', async () => {
    const { id } = await h.createIngestion({ 'a.jsonl': jsonLines(0, 5) }, {}, 'cif');
    const { token } = await createToken(h.db, {
      tenantId: h.tenantId,
      name: 'runner',
      subject: 'runner',
      permissions: ['ingestion:read', 'ingestion:run'],
    });
    const res = await h.app.request(`/api/v1/ingestions/${id}/refresh-if`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ condition: 'true', operation: 'full_refresh', confirm: true }),
    });
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({
      error_code: 'INSUFFICIENT_PERMISSIONS',
      required_permission: 'ingestion:refresh',
    });
    expect(await operationsOf(id)).toBe(0);

    const missing = await h.api('POST', '/api/v1/ingestions/ing_missing/refresh-if', {
      condition: 'true',
      operation: 'full_refresh',
      confirm: true,
    });
    expect(missing.status).toBe(404);
    expect(missing.body).toMatchObject({ error_code: 'INGESTION_NOT_FOUND' });
  });
});

describe('the API reference', () => {
  it('documents refresh-if, refresh-range and batch-refresh with their facts and seed 001 examples', async () => {
    type Op = {
      description: string;
      'x-permission': string;
      requestBody: { content: { 'application/json': { examples: Record<string, { value: unknown }> } } };
    };
    const doc = (await (await h.app.request('/openapi.json')).json()) as {
      paths: Record<string, { post: Op }>;
    };
    const refreshIf = doc.paths['/api/v1/ingestions/{id}/refresh-if']!.post;
    for (const fact of [
      'file_count',
      'new_file_count',
      'new_bytes',
      'failed_file_count',
      'hours_since_last_success',
      'table_row_count',
      'schema_changed',
    ])
      expect(refreshIf.description).toContain(`| \`${fact}\` |`);
    expect(refreshIf.requestBody.content['application/json'].examples.condition!.value).toEqual({
      condition: 'file_count > 100',
      operation: 'full_refresh',
      confirm: true,
    });
    const range = doc.paths['/api/v1/ingestions/{id}/refresh-range']!.post;
    expect(range.description).toContain('2025-01-31T23:59:59.999Z');
    expect(range.requestBody.content['application/json'].examples.january!.value).toMatchObject({
      start_date: '2025-01-01',
      end_date: '2025-01-31',
    });
    const batch = doc.paths['/api/v1/batch-refresh']!.post;
    expect(batch.requestBody.content['application/json'].examples.batch!.value).toMatchObject({
      ingestion_ids: ['ing-1', 'ing-2', 'ing-3'],
    });
    for (const op of [refreshIf, range, batch]) expect(op['x-permission']).toBe('ingestion:refresh');
  });
});
