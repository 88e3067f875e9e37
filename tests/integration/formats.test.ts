import { readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from '../helpers/harness.js';

/** JSON arrays and Parquet, read through DuckDB and loaded like JSON lines. */
let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

async function columnTypes(table: string): Promise<Record<string, string>> {
  const rows = await h.sql<{ name: string; type: string }[]>`
    select column_name as name, data_type as type from information_schema.columns
    where table_schema = 'raw' and table_name = ${table} order by ordinal_position`;
  return Object.fromEntries(rows.map((r) => [r.name, r.type]));
}

async function failedFiles(id: string) {
  const res = await h.api<{ items: { file_path: string; error_message: string; error_type: string }[] }>(
    'GET',
    `/api/v1/ingestions/${id}/processed-files?status=FAILED`,
  );
  return res.body.items;
}

/** A Parquet file written by DuckDB from a SELECT (the test's fixture maker, not the code under test). */
async function parquetOf(select: string): Promise<Buffer> {
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

describe('JSON arrays', () => {
  it('loads pretty-printed arrays, plain and gzipped, keeping strings, nesting and big integers exact', async () => {
    const records = [
      {
        id: 1,
        note: 'line one\nline two',
        payload: { k: [1, 2] },
        big: '12345678901234567890',
        precise: '0.12345678901234567890123',
      },
      { id: 2, note: 'quote " and \\ backslash', payload: { k: [] }, big: '1', precise: '10.50' },
    ];
    // Big integers and long decimals written unquoted, as JSON numbers a double cannot hold.
    const text = JSON.stringify(records, null, 2).replace(/"(big|precise)": "([\d.]+)"/g, '"$1": $2');
    const { id, table } = await h.createIngestion(
      {
        'a.json': text,
        'b.json.gz': gzipSync(JSON.stringify([{ id: 3, note: 'zipped', payload: null, big: 7, precise: 1 }])),
      },
      { format: 'json' },
      'fmt_json',
    );
    const run = await h.runAndWait(id);
    expect(run).toMatchObject({ status: 'SUCCESS', files_processed: 2, records_written: 3 });
    expect(await columnTypes(table)).toMatchObject({
      id: 'bigint',
      note: 'text',
      payload: 'jsonb',
      big: 'numeric',
    });
    const rows = await h.sql.unsafe(
      `select id::int, note, payload, big::text, precise::text from raw.${table} order by id`,
    );
    expect(rows.map((r) => [r.id, r.note, r.payload, r.big, r.precise])).toEqual([
      [1, 'line one\nline two', { k: [1, 2] }, '12345678901234567890', '0.12345678901234567890123'],
      [2, 'quote " and \\ backslash', { k: [] }, '1', '10.50'],
      [3, 'zipped', null, '7', '1'],
    ]);
  });

  it('a truncated array or a file that is not an array fails alone, with the reason recorded', async () => {
    const { id, table } = await h.createIngestion(
      {
        'good.json': JSON.stringify([{ id: 1 }]),
        'truncated.json': '[{"id": 2}, {"id": ',
        'object.json': '{"id": 3}',
      },
      { format: 'json' },
      'fmt_json_bad',
    );
    const run = await h.runAndWait(id);
    expect(run).toMatchObject({ status: 'PARTIAL_SUCCESS', files_processed: 1, files_failed: 2 });
    const failed = Object.fromEntries((await failedFiles(id)).map((f) => [path.basename(f.file_path), f]));
    expect(failed['truncated.json']?.error_message).toMatch(/^JSON array: .*[Mm]alformed JSON/);
    expect(failed['object.json']?.error_message).toMatch(/^JSON array: .*top-level JSON array/);
    expect(failed['object.json']?.error_type).toBe('ConvertError');
    // The error names the data, not the worker's temporary file.
    expect(failed['truncated.json']?.error_message).not.toContain(tmpdir());
    const [count] = await h.sql.unsafe(`select count(*)::int as n from raw.${table}`);
    expect(count!.n).toBe(1);
  });
});

describe('Parquet', () => {
  it('loads typed columns with exact decimals, timestamps, lists and structs', async () => {
    const parquet = await parquetOf(`
      SELECT i AS id,
             'user' || i AS user_id,
             CAST(i * 1000000000.01 AS DECIMAL(18, 2)) AS amount,
             CAST('12345678901234567890.123456789012345678' AS DECIMAL(38, 18)) AS wide,
             TIMESTAMPTZ '2024-03-01 12:00:00+00' + INTERVAL (i) HOUR AS ts,
             DATE '2024-03-01' + CAST(i AS INTEGER) AS day,
             [i, i + 1] AS tags,
             {'k': i, 'v': 'x'} AS payload,
             CASE WHEN i = 2 THEN 'nan'::DOUBLE ELSE i / 4 END AS ratio
      FROM range(1, 4) t(i)`);
    const { id, table } = await h.createIngestion(
      { 'part-0.parquet': parquet },
      { format: 'parquet' },
      'fmt_pq',
    );
    const run = await h.runAndWait(id);
    expect(run).toMatchObject({ status: 'SUCCESS', records_written: 3 });
    expect(await columnTypes(table)).toMatchObject({
      id: 'bigint',
      user_id: 'text',
      amount: 'numeric',
      wide: 'numeric',
      ts: 'timestamp with time zone',
      day: 'date',
      tags: 'jsonb',
      payload: 'jsonb',
      // NaN is kept as the text "nan" rather than dropped, so the column is text.
      ratio: 'text',
    });
    const rows = await h.sql.unsafe(
      `select id::int, amount::text, wide::text, ts = timestamptz '2024-03-01 12:00:00+00' + make_interval(hours => id::int) as ts_ok,
              day::text, tags, payload, ratio from raw.${table} order by id`,
    );
    // Decimals arrive digit for digit, even past what a double holds.
    expect(rows.every((r) => r.wide === '12345678901234567890.123456789012345678')).toBe(true);
    expect(rows.map((r) => [r.id, r.amount, r.ts_ok, r.day, r.tags, r.payload, r.ratio])).toEqual([
      [1, '1000000000.01', true, '2024-03-02', [1, 2], { k: 1, v: 'x' }, '0.25'],
      [2, '2000000000.02', true, '2024-03-03', [2, 3], { k: 2, v: 'x' }, 'nan'],
      [3, '3000000000.03', true, '2024-03-04', [3, 4], { k: 3, v: 'x' }, '0.75'],
    ]);
  });

  it('a file that is not Parquet fails alone, with the reason recorded', async () => {
    const good = await parquetOf('SELECT 1 AS id');
    const { id } = await h.createIngestion(
      { 'good.parquet': good, 'broken.parquet': good.subarray(0, good.length - 20) },
      { format: 'parquet' },
      'fmt_pq_bad',
    );
    const run = await h.runAndWait(id);
    expect(run).toMatchObject({ status: 'PARTIAL_SUCCESS', files_processed: 1, files_failed: 1 });
    const [failed] = await failedFiles(id);
    expect(failed).toMatchObject({ error_type: 'ConvertError' });
    expect(failed!.error_message).toMatch(/^Parquet: /);
  });
});

describe('JSON lines read whole or streamed', () => {
  it('load CRLF line endings and blank lines the same way, below and above the 1 MiB cut-over', async () => {
    const crlf = (first: number, count: number) => {
      const lines: string[] = [];
      for (let id = first; id < first + count; id++) {
        lines.push(JSON.stringify({ id, note: `row ${id} ${'x'.repeat(80)}` }));
        if (id % 1000 === 0) lines.push('');
      }
      return `${lines.join('\r\n')}\r\n`;
    };
    const small = crlf(0, 100);
    const large = crlf(100_000, 15_000);
    expect(Buffer.byteLength(small)).toBeLessThan(1024 * 1024);
    expect(Buffer.byteLength(large)).toBeGreaterThan(1024 * 1024);
    const { id, table } = await h.createIngestion(
      { 'small.jsonl': small, 'large.jsonl': large },
      {},
      'fmt_crlf',
    );
    expect(await h.runAndWait(id)).toMatchObject({ status: 'SUCCESS', records_written: 15_100 });
    const [r] = await h.sql.unsafe(
      `select count(*)::int as n, count(*) filter (where note not like '%x')::int as bad from raw.${table}`,
    );
    expect(r).toEqual({ n: 15_100, bad: 0 });
  });
});
