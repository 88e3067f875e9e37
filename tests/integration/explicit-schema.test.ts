import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, jsonRecords as lines, startHarness } from '../helpers/harness.js';

/** Declared columns instead of inference, and the schema history the API shows. */
let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

async function columnTypes(table: string): Promise<[string, string][]> {
  const rows = await h.sql<{ name: string; type: string }[]>`
    select a.attname as name, format_type(a.atttypid, a.atttypmod) as type
    from pg_attribute a where a.attrelid = ${`raw.${table}`}::regclass and a.attnum > 0 and not a.attisdropped
    order by a.attnum`;
  return rows.map((r) => [r.name, r.type]);
}

const declared = [
  { name: 'id', type: 'integer' },
  { name: 'amount', type: 'numeric(12,2)' },
  { name: 'code', type: 'varchar(8)' },
  { name: 'seen_at', type: 'timestamptz' },
];

interface SchemaBody {
  current_version: number | null;
  declared_columns: { name: string; type: string }[] | null;
  versions: {
    version: number;
    columns: { name: string; type: string }[];
    added: { name: string; type: string }[];
    first_file: string;
    files: number;
  }[];
}

describe('explicit schema', () => {
  it('creates the declared columns with their types; undeclared fields still follow add_columns', async () => {
    const { id, table } = await h.createIngestion(
      {
        // Inference would make amount bigint and code bigint: the declared types win.
        '1.jsonl': lines([
          { id: 1, amount: 10, code: 7, seen_at: '2024-01-01T00:00:00Z', extra: true },
          { id: 2, amount: 11, code: 8, seen_at: '2024-01-02T00:00:00Z', extra: false },
        ]),
      },
      { columns: declared },
      'xs_add',
    );
    expect(await h.runAndWait(id)).toMatchObject({ status: 'SUCCESS', records_written: 2 });
    expect(await columnTypes(table)).toEqual([
      ['id', 'integer'],
      ['amount', 'numeric(12,2)'],
      ['code', 'character varying(8)'],
      ['seen_at', 'timestamp with time zone'],
      ['extra', 'boolean'],
      ['_source_file', 'text'],
      ['_ingested_at', 'timestamp with time zone'],
      ['_run_id', 'text'],
    ]);
    const rows = await h.sql.unsafe(`select amount::text, code from raw.${table} order by id`);
    expect(rows.map((r) => [r.amount, r.code])).toEqual([
      ['10.00', '7'],
      ['11.00', '8'],
    ]);
  });

  it('names the columns of a CSV without a header, in file order', async () => {
    const { id, table } = await h.createIngestion(
      { 'a.csv': '1,2.5,abc,2024-01-01 10:00:00+00\n2,3,def,\n' },
      { format: 'csv', format_options: { header: false }, columns: declared },
      'xs_csv',
    );
    expect(await h.runAndWait(id)).toMatchObject({ status: 'SUCCESS', records_written: 2 });
    const rows = await h.sql.unsafe(
      `select id, amount::text, code, seen_at is null as no_time from raw.${table} order by id`,
    );
    expect(rows.map((r) => [r.id, r.amount, r.code, r.no_time])).toEqual([
      [1, '2.50', 'abc', false],
      [2, '3.00', 'def', true],
    ]);
  });

  it('rescue: undeclared fields and misfit values go to _rescued_data from the first file on', async () => {
    const { id, table } = await h.createIngestion(
      { '1.jsonl': lines([{ id: 1, amount: 'lots', code: 'toolongvalue', colour: 'red' }]) },
      { columns: declared, schema_mode: 'rescue' },
      'xs_rescue',
    );
    expect(await h.runAndWait(id)).toMatchObject({ status: 'SUCCESS', records_written: 1 });
    const [row] = await h.sql.unsafe(`select id, amount, code, _rescued_data from raw.${table}`);
    expect(row).toEqual({
      id: 1,
      amount: null,
      code: null,
      _rescued_data: { amount: 'lots', code: 'toolongvalue', colour: 'red' },
    });
  });

  it('fail: an undeclared field fails the file, naming it', async () => {
    const { id } = await h.createIngestion(
      { '1.jsonl': lines([{ id: 1, colour: 'red' }]) },
      { columns: declared, schema_mode: 'fail' },
      'xs_fail',
    );
    expect(await h.runAndWait(id)).toMatchObject({ status: 'FAILED', files_failed: 1 });
    const files = await h.api<{ items: { error_message: string }[] }>(
      'GET',
      `/api/v1/ingestions/${id}/processed-files?status=FAILED`,
    );
    expect(files.body.items[0]!.error_message).toBe(
      'field "colour" not in the declared columns (schema_mode "fail")',
    );
  });

  it('rejects a type outside the list, a bad name and duplicate names with 400 VALIDATION_ERROR', async () => {
    const bucket = await h.createBucket();
    const connection_id = await h.createS3Connection();
    for (const columns of [
      [{ name: 'id', type: 'bigint; drop table raw.x' }],
      [{ name: 'id', type: 'numeric(1000)' }],
      [{ name: '_source_file', type: 'text' }],
      [
        { name: 'id', type: 'text' },
        { name: 'id', type: 'bigint' },
      ],
      [],
    ]) {
      const res = await h.api<{ error_code: string; message: string }>('POST', '/api/v1/ingestions', {
        name: `bad-${Math.random()}`,
        connection_id,
        source: { bucket, format: 'jsonl', columns },
        destination: `raw.bad_${Math.random().toString(36).slice(2, 8)}`,
      });
      expect(res.status, JSON.stringify(columns)).toBe(400);
      expect(res.body.error_code).toBe('VALIDATION_ERROR');
    }
  });
});

describe('schema history', () => {
  it('records each set of columns with the file that introduced it, and which version every file used', async () => {
    const { id, bucket } = await h.createIngestion(
      { '1.jsonl': lines([{ id: 1, n: 10 }]), '2.jsonl': lines([{ id: 2, n: 20 }]) },
      {},
      'sh',
    );
    await h.runAndWait(id);
    await h.putObject(bucket, '3.jsonl', lines([{ id: 3, n: 30, colour: 'red' }]));
    await h.runAndWait(id);

    const schema = await h.api<SchemaBody>('GET', `/api/v1/ingestions/${id}/schema`);
    expect(schema.status).toBe(200);
    expect(schema.body.current_version).toBe(2);
    expect(schema.body.declared_columns).toBeNull();
    expect(
      schema.body.versions.map((v) => [v.version, v.columns, v.added, path.basename(v.first_file), v.files]),
    ).toEqual([
      [
        1,
        [
          { name: 'id', type: 'bigint' },
          { name: 'n', type: 'bigint' },
        ],
        [
          { name: 'id', type: 'bigint' },
          { name: 'n', type: 'bigint' },
        ],
        expect.stringMatching(/^[12]\.jsonl$/),
        2,
      ],
      [
        2,
        [
          { name: 'id', type: 'bigint' },
          { name: 'n', type: 'bigint' },
          { name: 'colour', type: 'text' },
        ],
        [{ name: 'colour', type: 'text' }],
        '3.jsonl',
        1,
      ],
    ]);
    const files = await h.api<{ items: { file_path: string; schema_version: number }[] }>(
      'GET',
      `/api/v1/ingestions/${id}/processed-files`,
    );
    expect(
      Object.fromEntries(files.body.items.map((f) => [path.basename(f.file_path), f.schema_version])),
    ).toEqual({ '1.jsonl': 1, '2.jsonl': 1, '3.jsonl': 2 });

    // A rewritten file loads again with today's columns: it moves to version 2.
    await h.putObject(bucket, '1.jsonl', lines([{ id: 1, n: 11 }]));
    await h.runAndWait(id);
    const after = await h.api<SchemaBody>('GET', `/api/v1/ingestions/${id}/schema`);
    expect(after.body.versions.map((v) => [v.version, v.files])).toEqual([
      [1, 1],
      [2, 2],
    ]);
  });

  it('is empty before the first load, and 404 for an unknown ingestion', async () => {
    const { id } = await h.createIngestion({}, {}, 'sh_empty');
    const schema = await h.api<SchemaBody>('GET', `/api/v1/ingestions/${id}/schema`);
    expect(schema.body).toMatchObject({ current_version: null, versions: [] });
    const other = await h.api('GET', '/api/v1/ingestions/ing_doesnotexist/schema');
    expect(other.status).toBe(404);
  });
});
