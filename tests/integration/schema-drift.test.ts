import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, jsonRecords as lines, startHarness } from '../helpers/harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

async function ingestion(mode: 'add_columns' | 'rescue' | 'fail') {
  const { id, bucket, table } = await h.createIngestion(
    {
      '1.jsonl': lines([
        { id: 1, n: 10 },
        { id: 2, n: 20 },
      ]),
    },
    { schema_mode: mode },
    `sd_${mode}`,
  );
  expect((await h.runAndWait(id)).records_written).toBe(2);
  // A later file brings a new field and a value that does not fit `n bigint`.
  await h.putObject(
    bucket,
    '2.jsonl',
    lines([
      { id: 3, n: 30, color: 'red' },
      { id: 4, n: 'forty' },
    ]),
  );
  return { id, table };
}

describe('schema drift', () => {
  it('add_columns: a new field adds a column; a misfit value fails the file', async () => {
    const { id, table } = await ingestion('add_columns');
    const run = await h.runAndWait(id);
    expect(run).toMatchObject({ status: 'FAILED', files_failed: 1 });
    const cols =
      await h.sql`select column_name from information_schema.columns where table_schema = 'raw' and table_name = ${table}`;
    // The failed file's DDL rolled back with it.
    expect(cols.map((c) => c.column_name)).not.toContain('color');
  });

  it('rescue: misfit values and new fields go to _rescued_data, the file loads', async () => {
    const { id, table } = await ingestion('rescue');
    const run = await h.runAndWait(id);
    expect(run).toMatchObject({ status: 'SUCCESS', records_written: 2 });
    const rows = await h.sql.unsafe(`select id::int, n::int, _rescued_data from raw.${table} order by id`);
    expect(rows.map((r) => [r.id, r.n, r._rescued_data])).toEqual([
      [1, 10, null],
      [2, 20, null],
      [3, 30, { color: 'red' }],
      [4, null, { n: 'forty' }],
    ]);
  });

  it('fail: the file fails with an error naming the field', async () => {
    const { id } = await ingestion('fail');
    const run = await h.runAndWait(id);
    expect(run).toMatchObject({ status: 'FAILED', files_failed: 1 });
    const files = await h.api<{ items: { error_message: string }[] }>(
      'GET',
      `/api/v1/ingestions/${id}/processed-files?status=FAILED`,
    );
    expect(files.body.items[0]!.error_message).toMatch(/"color".*schema_mode "fail"/);
  });

  it('fail: a misfit value is reported with its field and value', async () => {
    const { id, bucket, table } = await h.createIngestion(
      { '1.jsonl': lines([{ id: 1, n: 10 }]) },
      { schema_mode: 'fail' },
      'sdv',
    );
    await h.runAndWait(id);
    await h.putObject(bucket, '2.jsonl', lines([{ id: 2, n: 'twenty' }]));
    await h.runAndWait(id);
    const files = await h.api<{ items: { error_message: string }[] }>(
      'GET',
      `/api/v1/ingestions/${id}/processed-files?status=FAILED`,
    );
    expect(files.body.items[0]!.error_message).toBe(
      `field "n": value "twenty" is not a valid bigint for raw.${table} (schema_mode "fail")`,
    );
  });
});

describe('first loads into a new schema', () => {
  it('several ingestions creating their tables in the same new schema at once all succeed', async () => {
    const schema = `fresh_${Math.random().toString(36).slice(2, 10)}`;
    const connection_id = await h.createS3Connection();
    const ids: string[] = [];
    for (const name of ['a', 'b', 'c', 'd']) {
      const bucket = await h.createBucket();
      await h.putObject(bucket, '1.jsonl', lines([{ id: 1, name }]));
      const res = await h.api<{ id: string }>('POST', '/api/v1/ingestions', {
        name: `${schema}-${name}`,
        connection_id,
        source: { bucket, format: 'jsonl' },
        destination: `${schema}.${name}`,
      });
      expect(res.status).toBe(201);
      ids.push(res.body.id);
    }
    const runs = await Promise.all(ids.map((id) => h.runAndWait(id)));
    expect(runs.map((r) => r.status)).toEqual(['SUCCESS', 'SUCCESS', 'SUCCESS', 'SUCCESS']);
    const [n] = await h.sql.unsafe(
      `select (select count(*) from ${schema}.a) + (select count(*) from ${schema}.b) + (select count(*) from ${schema}.c) + (select count(*) from ${schema}.d) as n`,
    );
    expect(Number(n!.n)).toBe(4);
  });
});

describe('inference from the first rows', () => {
  it('widens a type a later row does not fit, and types a field first seen late from its values', async () => {
    const rows: object[] = [];
    for (let i = 0; i < 15_000; i++) {
      rows.push({
        id: i,
        // Integers for the first 12,000 rows (past the 10,000-row sample), then a decimal.
        n: i === 12_000 ? 12.5 : i,
        // Dates, then one timestamp.
        d: i === 14_000 ? '2025-03-01T10:00:00Z' : '2025-03-01',
        // First seen after the sample: typed from all its values.
        late: i >= 11_000 ? i : undefined,
      });
    }
    const { id, table } = await h.createIngestion({ 'big.jsonl': lines(rows) }, {}, 'sd_sample');
    expect(await h.runAndWait(id)).toMatchObject({ status: 'SUCCESS', records_written: 15_000 });
    const cols = await h.sql<{ name: string; type: string }[]>`
      select column_name as name, data_type as type from information_schema.columns
      where table_schema = 'raw' and table_name = ${table} and column_name in ('id', 'n', 'd', 'late')
      order by ordinal_position`;
    expect(cols).toEqual([
      { name: 'id', type: 'bigint' },
      { name: 'n', type: 'numeric' },
      { name: 'd', type: 'timestamp with time zone' },
      { name: 'late', type: 'bigint' },
    ]);
    const [r] = await h.sql.unsafe(
      `select sum(n)::text as n, count(late)::int as late, count(*) filter (where d <> '2025-03-01')::int as odd from raw.${table}`,
    );
    // 0 + 1 + … + 14,999 with 12,000 replaced by 12.5.
    expect(r).toEqual({ n: String((14_999 * 15_000) / 2 - 12_000 + 12.5), late: 4_000, odd: 1 });
    const schema = await h.api<{ versions: { columns: { name: string; type: string }[] }[] }>(
      'GET',
      `/api/v1/ingestions/${id}/schema`,
    );
    // The file's schema version is the widened one.
    expect(schema.body.versions.at(-1)!.columns.find((c) => c.name === 'n')?.type).toBe('numeric');
  });
});
