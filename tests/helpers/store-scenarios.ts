import { readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inProcessClient } from '../../src/api/in-process.js';
import { parseSecretKey } from '../../src/secrets/crypto.js';
import { type FileMeta, sourceContexts, sourceKind } from '../../src/sources/index.js';
import { csvRows, type Harness, jsonLines, type RunBody, startHarness } from './harness.js';
import type { StoreFixture, StorePlace } from './store-fixtures.js';

/**
 * The issue's list, for one store kind: seed 003's E2E-02 and a swap full refresh, a rewritten file,
 * a malformed file, a `.gz` file, CSV and Parquet, a 1,500-object listing, the connection test, and
 * a refused address. One ingestion per scenario, files uploaded in parallel.
 */
export function describeStoreKind(makeFixture: () => StoreFixture): void {
  let h: Harness;
  let f: StoreFixture;

  beforeAll(async () => {
    h = await startHarness();
    f = makeFixture();
    await f.storeSecrets(h);
  });
  afterAll(async () => {
    await h?.close();
  });

  const createConnection = async (config: Record<string, unknown>) => {
    const res = await h.api<{ id: string; error_code?: string }>('POST', '/api/v1/connections', {
      name: `${f.kind}-${Math.random().toString(36).slice(2, 10)}`,
      kind: f.kind,
      config,
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return res.body.id;
  };

  const createIngestion = async (place: StorePlace, source: Record<string, unknown>, variant?: string) => {
    const table = `${f.kind}_${Math.random().toString(36).slice(2, 10)}`;
    const res = await h.api<{ id: string }>('POST', '/api/v1/ingestions', {
      name: table,
      connection_id: await createConnection(place.config(variant)),
      source: { ...place.source, ...source },
      destination: `raw.${table}`,
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return { id: res.body.id, table };
  };

  const failedFiles = async (id: string) =>
    (
      await h.api<{ items: { file_path: string; error_message: string; error_type: string }[] }>(
        'GET',
        `/api/v1/ingestions/${id}/processed-files?status=FAILED`,
      )
    ).body.items;

  describe(`${makeFixture.name.replace(/Fixture$/, '')} store`, () => {
    it('E2E-02: loads 3 files, then only the 2 new ones; a swap full refresh rebuilds the same 5,000 rows', async () => {
      const variant = f.variants.at(-1);
      const place = await f.newPlace();
      const file = (i: number) => [`landing/data-00${i + 1}.jsonl`, jsonLines(i * 1000, 1000)] as const;
      await place.put(Object.fromEntries([0, 1, 2].map(file)));
      const { id, table } = await createIngestion(
        place,
        { prefix: 'landing/', pattern: '*.jsonl', format: 'jsonl' },
        variant,
      );

      const first = await h.runAndWait(id);
      expect(first).toMatchObject({
        status: 'SUCCESS',
        files_discovered: 3,
        files_processed: 3,
        records_written: 3000,
      });
      await place.put(Object.fromEntries([3, 4].map(file)));
      const second = await h.runAndWait(id);
      expect(second).toMatchObject({
        status: 'SUCCESS',
        files_discovered: 5,
        files_processed: 2,
        files_skipped: 3,
        records_written: 2000,
      });
      const [c] = await h.sql.unsafe(
        `select count(*)::int as n, count(distinct id)::int as d, min(id)::int as lo, max(id)::int as hi,
                count(distinct _source_file)::int as files, min(_source_file) as first from raw.${table}`,
      );
      expect(c).toEqual({
        n: 5000,
        d: 5000,
        lo: 0,
        hi: 4999,
        files: 5,
        first: place.uri('landing/data-001.jsonl', variant),
      });
      const runs = await h.api<{ items: RunBody[] }>('GET', `/api/v1/ingestions/${id}/runs`);
      expect(runs.body.items.map((r) => [r.status, r.files_processed, r.records_written])).toEqual([
        ['SUCCESS', 2, 2000],
        ['SUCCESS', 3, 3000],
      ]);

      const refresh = await h.api<{ run_id: string; operation_id: string }>(
        'POST',
        `/api/v1/ingestions/${id}/full-refresh`,
        { confirm: true, strategy: 'swap', grace_period_seconds: 0 },
      );
      expect(refresh.status, JSON.stringify(refresh.body)).toBe(202);
      await h.waitForIngestionIdle(id);
      const op = await h.api<{ status: string; operations: { operation: string }[] }>(
        'GET',
        `/api/v1/operations/${refresh.body.operation_id}`,
      );
      expect(op.body.status).toBe('success');
      expect(op.body.operations.map((o) => o.operation)).toContain('table_swapped');
      const rebuilt = await h.api<RunBody>('GET', `/api/v1/runs/${refresh.body.run_id}`);
      expect(rebuilt.body).toMatchObject({ status: 'SUCCESS', files_processed: 5, records_written: 5000 });
      const [after] = await h.sql.unsafe(
        `select count(*)::int as n, count(distinct id)::int as d from raw.${table}`,
      );
      expect(after).toEqual({ n: 5000, d: 5000 });
    });

    it('fails a malformed file alone, loads a .gz file, and replaces the rows of a file rewritten with new content', async () => {
      const place = await f.newPlace();
      await place.put({
        'a.jsonl': jsonLines(0, 10),
        'b.jsonl.gz': gzipSync(jsonLines(100, 5)),
        'bad.jsonl': `${jsonLines(200, 3)}{"id": 203, "user": "broken\n`,
      });
      const { id, table } = await createIngestion(place, { pattern: '*.jsonl*', format: 'jsonl' });
      const first = await h.runAndWait(id);
      expect(first).toMatchObject({
        status: 'PARTIAL_SUCCESS',
        files_processed: 2,
        files_failed: 1,
        records_written: 15,
      });
      const [failed] = await failedFiles(id);
      expect(failed).toMatchObject({ file_path: place.uri('bad.jsonl') });
      expect(failed!.error_message).toMatch(/^line 4: .*json/i);

      // New content, and a new size, so the change marker moves whatever the store's clock resolution.
      await place.put({ 'a.jsonl': jsonLines(1000, 3) });
      const second = await h.runAndWait(id);
      expect(second).toMatchObject({ files_processed: 1, records_written: 3 });
      const rows = await h.sql.unsafe<{ id: number; file: string }[]>(
        `select id::int, _source_file as file from raw.${table} order by id`,
      );
      expect(rows.map((r) => r.id)).toEqual([100, 101, 102, 103, 104, 1000, 1001, 1002]);
      expect(rows.filter((r) => r.file === place.uri('a.jsonl')).map((r) => r.id)).toEqual([
        1000, 1001, 1002,
      ]);
      expect(rows.filter((r) => r.file === place.uri('b.jsonl.gz'))).toHaveLength(5);
    });

    it('loads a CSV file and a Parquet file with their types', async () => {
      const place = await f.newPlace();
      await place.put({
        'csv/p.csv': csvRows(0, 100),
        'pq/p.parquet': await parquetOf(
          `SELECT i AS id, CAST(i * 1.5 AS DECIMAL(10, 2)) AS amount, DATE '2024-03-01' + CAST(i AS INTEGER) AS day FROM range(0, 50) t(i)`,
        ),
      });
      const csv = await createIngestion(place, { prefix: 'csv/', pattern: '*.csv', format: 'csv' });
      const parquet = await createIngestion(place, {
        prefix: 'pq/',
        pattern: '*.parquet',
        format: 'parquet',
      });
      const [csvRun, pqRun] = await Promise.all([h.runAndWait(csv.id), h.runAndWait(parquet.id)]);
      expect(csvRun).toMatchObject({ status: 'SUCCESS', files_processed: 1, records_written: 100 });
      expect(pqRun).toMatchObject({ status: 'SUCCESS', files_processed: 1, records_written: 50 });
      const [c] = await h.sql.unsafe(
        `select sum(id)::int as s, max(amount)::text as a from raw.${csv.table}`,
      );
      expect(c).toEqual({ s: 4950, a: '123.75' });
      const types = await h.sql<{ column_name: string; data_type: string }[]>`
        select column_name, data_type from information_schema.columns
        where table_schema = 'raw' and table_name = ${parquet.table} and column_name in ('id', 'amount', 'day')
        order by column_name`;
      expect(types.map((t) => [t.column_name, t.data_type])).toEqual([
        ['amount', 'numeric'],
        ['day', 'date'],
        ['id', 'bigint'],
      ]);
      const [p] = await h.sql.unsafe(
        `select sum(amount)::text as s, max(day)::text as d from raw.${parquet.table}`,
      );
      expect(p).toEqual({ s: '1837.5', d: '2024-04-19' });
    });

    it('pages through a 1,500-object listing in key order, resumes after a key, and loads what matches', async () => {
      const place = await f.newPlace();
      const keys = ['a', 'b', 'c'].flatMap((d) =>
        Array.from({ length: 500 }, (_, i) => `many/${d}/part-${String(i).padStart(5, '0')}.jsonl`),
      );
      await place.put(Object.fromEntries(keys.map((k, i) => [k, `{"id": ${i}}\n`])));

      // The store itself: pages of at most 1,000 in lexicographic order, and a listing that resumes.
      const ctx = await sourceContexts({
        sql: h.sql,
        secretKey: parseSecretKey(process.env.AUTOLOADER_SECRET_KEY!),
        env: process.env,
        address: { allowPrivate: true, allowList: [] },
      })(h.tenantId);
      const kind = sourceKind(f.kind);
      const store = await kind.createStore(kind.configSchema.parse(place.config()), ctx);
      const pages: FileMeta[][] = [];
      for await (const page of store.list({ bucket: undefined, prefix: 'many/' })) pages.push(page);
      expect(pages.length).toBeGreaterThanOrEqual(2);
      expect(pages.every((p) => p.length <= 1000)).toBe(true);
      expect(pages.flat().map((m) => m.key)).toEqual([...keys].sort());
      expect(pages.flat().every((m) => m.size > 0 && m.etag)).toBe(true);
      const resumed: string[] = [];
      for await (const page of store.list({ bucket: undefined, prefix: 'many/', startAfter: keys[1199] }))
        resumed.push(...page.map((m) => m.key));
      expect(resumed).toEqual(keys.slice(1200));

      // Through a run: every hundredth object of each folder, the last ones past the first page.
      const { id, table } = await createIngestion(place, {
        prefix: 'many/',
        pattern: '**/*00.jsonl',
        format: 'jsonl',
      });
      const run = await h.runAndWait(id);
      expect(run).toMatchObject({
        status: 'SUCCESS',
        files_discovered: 15,
        files_processed: 15,
        records_written: 15,
      });
      const [c] = await h.sql.unsafe(`select count(*)::int as n, max(id)::int as hi from raw.${table}`);
      expect(c).toEqual({ n: 15, hi: 1400 });
    });

    it('tests a connection: each check reported, and wrong credentials said clearly', async () => {
      const place = await f.newPlace();
      await place.put({ 'x.jsonl': jsonLines(0, 1) });
      const good = await h.api<{ ok: boolean; checks: { name: string; ok: boolean; detail: string }[] }>(
        'POST',
        `/api/v1/connections/${await createConnection(place.config())}/test`,
        {},
      );
      expect(good.status).toBe(200);
      expect(good.body.checks.map((c) => c.name)).toEqual(f.checks);
      expect(good.body, JSON.stringify(good.body)).toMatchObject({ ok: true });
      for (const wrong of f.wrongCredentials(place)) {
        const res = await h.api<{ ok: boolean; checks: { name: string; ok: boolean; detail: string }[] }>(
          'POST',
          `/api/v1/connections/${await createConnection(wrong.config)}/test`,
          {},
        );
        expect(res.status).toBe(200);
        expect(res.body.ok, wrong.label).toBe(false);
        const last = res.body.checks.at(-1)!;
        expect(
          { name: last.name, ok: last.ok },
          `${wrong.label}: ${JSON.stringify(res.body.checks)}`,
        ).toEqual({
          name: wrong.check,
          ok: false,
        });
        expect(last.detail, wrong.label).toMatch(wrong.detail);
        // Everything before the failing check passed.
        expect(res.body.checks.slice(0, -1).every((c) => c.ok)).toBe(true);
      }
    });

    it('fails a run at once, saying why, when its container, bucket or folder does not exist', async () => {
      const place = await f.newPlace();
      const missing = f.missingPlace(place);
      const table = `${f.kind}_${Math.random().toString(36).slice(2, 10)}`;
      const ing = await h.api<{ id: string }>('POST', '/api/v1/ingestions', {
        name: table,
        connection_id: await createConnection(missing.config),
        source: { ...place.source, format: 'jsonl' },
        destination: `raw.${table}`,
      });
      expect(ing.status).toBe(201);
      const run = await h.runAndWait(ing.body.id);
      expect(run.status).toBe('FAILED');
      expect(run.error).toMatch(missing.error);
    });

    it('is described in the OpenAPI document, its configuration field by field', async () => {
      const doc = (await (await h.app.request('/openapi.json')).json()) as {
        components: { schemas: { CreateConnection: { oneOf: OpenApiVariant[] } } };
      };
      const variant = doc.components.schemas.CreateConnection.oneOf.find(
        (v) => v.properties.kind.enum?.[0] === f.kind,
      );
      const shape = (sourceKind(f.kind).configSchema as unknown as { shape: Record<string, unknown> }).shape;
      expect(Object.keys(variant?.properties.config.properties ?? {}).sort()).toEqual(
        Object.keys(shape).sort(),
      );
      expect(variant?.properties.config.description).toMatch(/change marker/);
    });

    it('refuses a connection whose host resolves to an address the operator does not allow', async () => {
      const place = await f.newPlace();
      const strict = inProcessClient(h.makeApp({ address: { allowPrivate: false, allowList: [] } }), h.token);
      const res = await strict<{ error_code: string; field: string }>('POST', '/api/v1/connections', {
        name: `${f.kind}-private`,
        kind: f.kind,
        config: place.config(),
      });
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({ error_code: 'ENDPOINT_NOT_ALLOWED', field: f.hostField });
    });
  });
}

interface OpenApiVariant {
  properties: {
    kind: { enum?: string[] };
    config: { description?: string; properties?: Record<string, unknown> };
  };
}

/** A Parquet file written by DuckDB from a SELECT (the fixture maker, not the code under test). */
export async function parquetOf(select: string): Promise<Buffer> {
  const file = path.join(tmpdir(), `fixture-${process.pid}-${Math.random().toString(36).slice(2)}.parquet`);
  const db = await DuckDBInstance.create(':memory:');
  const conn = await db.connect();
  try {
    await conn.run(`COPY (${select}) TO '${file}' (FORMAT parquet)`);
    return await readFile(file);
  } finally {
    conn.closeSync();
    await rm(file, { force: true });
  }
}
