import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, jsonRecords, startHarness } from '../helpers/harness.js';

/**
 * Files as they arrive in real buckets: Windows byte-order marks and CRLF, analytics keys longer
 * than Postgres' 63-byte identifiers, empty keys and keys named like our lineage columns, lines that
 * are JSON but not objects, NUL escapes — and the row error policy (on_error) that sets bad rows
 * aside instead of failing the file. "Large" files (> 1 MiB) take the COPY path, small ones the
 * one-statement path: both are exercised.
 */
let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

const BOM = '\uFEFF';

interface FileRow {
  id: number;
  file_path: string;
  status: string;
  error_message: string | null;
  records_ingested: number | null;
  rows_rejected: number | null;
}

async function files(id: string): Promise<FileRow[]> {
  const res = await h.api<{ items: FileRow[] }>('GET', `/api/v1/ingestions/${id}/processed-files`);
  return res.body.items;
}

const fileNamed = async (id: string, name: string) =>
  (await files(id)).find((f) => f.file_path.endsWith(`/${name}`));

async function columnsOf(table: string): Promise<string[]> {
  const rows = await h.sql<{ name: string }[]>`
    select column_name as name from information_schema.columns
    where table_schema = 'raw' and table_name = ${table} order by ordinal_position`;
  return rows.map((r) => r.name);
}

const query = async <T>(text: string) => (await h.sql.unsafe(text)) as unknown as T[];

/** Records padded so that `count` of them pass 1 MiB. */
function bigRecords(count: number, extra: (i: number) => object = () => ({})): object[] {
  return Array.from({ length: count }, (_, i) => ({ id: i + 1, pad: 'p'.repeat(80), ...extra(i + 1) }));
}

describe('byte-order marks and CRLF', () => {
  it('a UTF-8 BOM at the start of JSON lines (small and large) and CSV is not part of the first record', async () => {
    const big = jsonRecords(bigRecords(12_000));
    expect(big.length).toBeGreaterThan(1024 * 1024);
    const { id, table } = await h.createIngestion({
      'small.jsonl': `${BOM}${jsonRecords([{ id: 1 }, { id: 2 }])}`,
      'big.jsonl': `${BOM}${big}`,
    });
    const run = await h.runAndWait(id);
    expect(run).toMatchObject({ status: 'SUCCESS', files_processed: 2, records_written: 12_002 });
    expect(await columnsOf(table)).toContain('id');

    const csv = await h.createIngestion(
      { 'a.csv': `${BOM}id,name\n1,ann\n2,bob\n` },
      { format: 'csv', pattern: '*.csv' },
      'bomcsv',
    );
    expect(await h.runAndWait(csv.id)).toMatchObject({ status: 'SUCCESS', records_written: 2 });
    const cols = await columnsOf(csv.table);
    expect(cols.slice(0, 2)).toEqual(['id', 'name']);
  });

  it('CRLF line endings load every record and keep \\r out of the values (CSV, JSON lines, .gz)', async () => {
    const csvText = `id,name,note\r\n1,ann,"two\r\nlines"\r\n2,bob,plain\r\n3,cy,last\r\n`;
    const csv = await h.createIngestion(
      { 'crlf.csv': csvText, 'crlf2.csv.gz': gzipSync(csvText.replaceAll('ann', 'ann2')) },
      { format: 'csv', pattern: '*.csv*' },
      'crlf',
    );
    expect(await h.runAndWait(csv.id)).toMatchObject({ status: 'SUCCESS', records_written: 6 });
    const rows = await query<{ id: string; name: string; note: string }>(
      `select id::text, name, note from raw.${csv.table} order by _source_file, id`,
    );
    expect(rows.map((r) => r.name)).toEqual(['ann', 'bob', 'cy', 'ann2', 'bob', 'cy']);
    expect(rows.filter((r) => r.note.endsWith('\r') || r.name.includes('\r'))).toEqual([]);
    // A line break inside quotes is the value's own, as the file has it.
    expect(rows[0]!.note).toBe('two\r\nlines');

    const lines = `${JSON.stringify({ id: 1, s: 'a' })}\r\n${JSON.stringify({ id: 2, s: 'b' })}\r\n`;
    const json = await h.createIngestion({ 'crlf.jsonl': lines }, {}, 'crlfj');
    expect(await h.runAndWait(json.id)).toMatchObject({ status: 'SUCCESS', records_written: 2 });
    const vals = await query<{ s: string }>(`select s from raw.${json.table} order by id`);
    expect(vals.map((v) => v.s)).toEqual(['a', 'b']);
  });
});

describe('keys that cannot be column names as they are', () => {
  const longA = `event_properties_${'x'.repeat(60)}_alpha`;
  const longB = `event_properties_${'x'.repeat(60)}_beta`;

  it('long keys get distinct names within 63 bytes; the empty key and lineage-named keys keep their data', async () => {
    const record = {
      id: 1,
      [longA]: 'a',
      [longB]: 'b',
      '': 'empty',
      _source_file: 'from the data',
      _run_id: 7,
    };
    const { id, table } = await h.createIngestion({ 'keys.jsonl': jsonRecords([record]) });
    const run = await h.runAndWait(id);
    expect(run).toMatchObject({ status: 'SUCCESS', records_written: 1 });

    const cols = await columnsOf(table);
    expect(cols).toContain('_empty_key');
    expect(cols).toContain('_source_file_data');
    expect(cols).toContain('_run_id_data');
    const long = cols.filter((c) => c.startsWith('event_properties_'));
    expect(long).toHaveLength(2);
    for (const c of long) expect(Buffer.byteLength(c)).toBeLessThanOrEqual(63);
    expect(new Set(long).size).toBe(2);

    const [row] = await query<Record<string, unknown>>(`select * from raw.${table}`);
    expect(row).toMatchObject({ _empty_key: 'empty', _source_file_data: 'from the data', _run_id_data: '7' });
    // The lineage column is ours, still the file's URI.
    expect(String(row!._source_file)).toMatch(/^s3:\/\/.+\/keys\.jsonl$/);
    expect(long.map((c) => row![c]).sort()).toEqual(['a', 'b']);

    // The schema history keeps each original name, and loading the same keys again reuses the columns.
    const schema = await h.api<{ versions: { columns: { name: string; source_name?: string }[] }[] }>(
      'GET',
      `/api/v1/ingestions/${id}/schema`,
    );
    const latest = schema.body.versions.at(-1)!.columns;
    const bySource = new Map(
      latest.filter((c) => c.source_name !== undefined).map((c) => [c.source_name, c.name]),
    );
    expect(bySource.get('')).toBe('_empty_key');
    expect(bySource.get('_source_file')).toBe('_source_file_data');
    expect(new Set([bySource.get(longA), bySource.get(longB)])).toEqual(new Set(long));

    await h.putObject(
      (await bucketOf(id))!,
      'keys2.jsonl',
      jsonRecords([{ ...record, id: 2, [longA]: 'a2' }]),
    );
    expect(await h.runAndWait(id)).toMatchObject({ status: 'SUCCESS', records_written: 1 });
    expect(await columnsOf(table)).toEqual(cols);
    const [second] = await query<Record<string, unknown>>(`select * from raw.${table} where id = 2`);
    expect(long.map((c) => second![c]).sort()).toEqual(['a2', 'b']);
  });

  it('the same long CSV header gets the same column as in JSON; two such headers stay apart', async () => {
    const csv = await h.createIngestion(
      { 'wide.csv': `${longA},${longB},_ingested_at\n1,2,3\n` },
      { format: 'csv', pattern: '*.csv' },
      'longcsv',
    );
    expect(await h.runAndWait(csv.id)).toMatchObject({ status: 'SUCCESS', records_written: 1 });
    const cols = await columnsOf(csv.table);
    const long = cols.filter((c) => c.startsWith('event_properties_'));
    expect(long).toHaveLength(2);
    expect(cols).toContain('_ingested_at_data');
    // Deterministic: the hash is of the original name.
    const hashA = createHash('sha256').update(longA).digest('hex').slice(0, 8);
    expect(long.some((c) => c.endsWith(`_${hashA}`))).toBe(true);
  });
});

async function bucketOf(ingestionId: string): Promise<string | undefined> {
  const res = await h.api<{ source: { bucket: string } }>('GET', `/api/v1/ingestions/${ingestionId}`);
  return res.body.source.bucket;
}

describe('lines that are JSON but not objects, and NUL escapes', () => {
  it('fails the file naming the line and what it found (small and large files)', async () => {
    const big = bigRecords(12_000).map((r) => JSON.stringify(r));
    big.splice(7_000, 0, '"just text"');
    const { id, table } = await h.createIngestion({
      'array.jsonl': `${JSON.stringify({ id: 1 })}\n\n[1,2]\n`,
      'null.jsonl': `${JSON.stringify({ id: 1 })}\nnull\n`,
      'big.jsonl': `${big.join('\n')}\n`,
    });
    const run = await h.runAndWait(id);
    expect(run).toMatchObject({ status: 'FAILED', files_failed: 3, records_written: 0 });
    expect((await fileNamed(id, 'array.jsonl'))?.error_message).toBe(
      'line 3: expected a JSON object, found an array',
    );
    expect((await fileNamed(id, 'null.jsonl'))?.error_message).toBe(
      'line 2: expected a JSON object, found null',
    );
    expect((await fileNamed(id, 'big.jsonl'))?.error_message).toBe(
      'line 7001: expected a JSON object, found a string',
    );
    const exists = await h.sql`select to_regclass(${`raw.${table}`}) as t`;
    if (exists[0]?.t)
      expect(await query<{ n: number }>(`select count(*)::int as n from raw.${table}`)).toEqual([{ n: 0 }]);
  });

  it('a string holding \\u0000 loads with U+FFFD in its place; an escaped backslash before u0000 is text', async () => {
    const nul = '{"id":1,"s":"a\\u0000b","k":"\\\\u0000"}';
    const big = bigRecords(12_000).map((r) => JSON.stringify(r));
    big.push(nul.replace('"id":1', '"id":99999'));
    const { id, table } = await h.createIngestion({
      'nul.jsonl': `${nul}\n`,
      'bignul.jsonl': `${big.join('\n')}\n`,
    });
    expect(await h.runAndWait(id)).toMatchObject({ status: 'SUCCESS', records_written: 12_002 });
    const rows = await query<{ s: string; k: string }>(
      `select s, k from raw.${table} where s is not null order by id`,
    );
    expect(rows).toEqual([
      { s: 'a\uFFFDb', k: '\\u0000' },
      { s: 'a\uFFFDb', k: '\\u0000' },
    ]);
  });
});

interface RejectedBody {
  items: { file_id: number; file_path: string; line: number; error: string; raw: string; run_id: string }[];
  next_cursor: string | null;
}

describe('on_error: skip_rows', () => {
  it('JSON lines: malformed lines, non-objects and values that fit no column are set aside; the good rows load', async () => {
    const { id, bucket, table } = await h.createIngestion(
      { 'first.jsonl': jsonRecords([{ id: 1, n: 10 }]) },
      {
        on_error: 'skip_rows',
      },
    );
    expect(await h.runAndWait(id)).toMatchObject({ status: 'SUCCESS', records_written: 1 });
    // The table now has n integer: "lots" fits no column.
    const lines = [
      JSON.stringify({ id: 2, n: 20 }),
      '{"id": 3, "n": ',
      '[1,2]',
      JSON.stringify({ id: 4, n: 'lots' }),
      '',
      JSON.stringify({ id: 5, n: 50 }),
    ];
    await h.putObject(bucket, 'second.jsonl', `${lines.join('\n')}\n`);
    const run = await h.runAndWait(id);
    expect(run).toMatchObject({
      status: 'SUCCESS',
      files_processed: 1,
      records_written: 2,
      rows_rejected: 3,
    });
    const ids = await query<{ id: number }>(`select id::int from raw.${table} order by id`);
    expect(ids.map((r) => r.id)).toEqual([1, 2, 5]);
    const second = await fileNamed(id, 'second.jsonl');
    expect(second).toMatchObject({ status: 'SUCCESS', records_ingested: 2, rows_rejected: 3 });

    const rejected = await h.api<RejectedBody>('GET', `/api/v1/ingestions/${id}/rejected-rows`);
    expect(rejected.status).toBe(200);
    expect(rejected.body.items.map((r) => r.line)).toEqual([2, 3, 4]);
    const [malformed, array, misfit] = rejected.body.items;
    expect(malformed).toMatchObject({ file_id: second!.id, raw: '{"id": 3, "n": ', run_id: run.id });
    expect(malformed!.error).toMatch(/invalid input syntax for type json/);
    expect(array).toMatchObject({ error: 'expected a JSON object, found array', raw: '[1,2]' });
    expect(misfit!.error).toBe('field "n": value "lots" is not a valid bigint');
    expect(JSON.parse(misfit!.raw)).toEqual({ id: 4, n: 'lots' });

    // Paged, and by file.
    const page = await h.api<RejectedBody>('GET', `/api/v1/ingestions/${id}/rejected-rows?limit=2`);
    expect(page.body.items).toHaveLength(2);
    const rest = await h.api<RejectedBody>(
      'GET',
      `/api/v1/ingestions/${id}/rejected-rows?limit=2&cursor=${page.body.next_cursor}`,
    );
    expect(rest.body).toMatchObject({ items: [{ line: 4 }], next_cursor: null });
    const other = await h.api<RejectedBody>(
      'GET',
      `/api/v1/ingestions/${id}/rejected-rows?file_id=${second!.id + 1000}`,
    );
    expect(other.body.items).toEqual([]);

    // A new version of the file replaces its rejected rows with its own (none here).
    await h.putObject(bucket, 'second.jsonl', jsonRecords([{ id: 3, n: 30 }]));
    expect(await h.runAndWait(id)).toMatchObject({ status: 'SUCCESS', records_written: 1, rows_rejected: 0 });
    const after = await h.api<RejectedBody>('GET', `/api/v1/ingestions/${id}/rejected-rows`);
    expect(after.body.items).toEqual([]);
    expect((await fileNamed(id, 'second.jsonl'))?.rows_rejected).toBe(0);
  });

  it('CSV: records with the wrong number of fields and misfit values are set aside (plain and .gz)', async () => {
    const text = 'id,amount\n1,1.5\n2\n3,abc\n4,4.5,extra\n5,5.5\n';
    const { id, table } = await h.createIngestion(
      { 'a.csv': text, 'b.csv.gz': gzipSync(text) },
      {
        format: 'csv',
        pattern: '*.csv*',
        on_error: 'skip_rows',
        columns: [{ name: 'amount', type: 'numeric' }],
      },
      'skipcsv',
    );
    const run = await h.runAndWait(id);
    expect(run).toMatchObject({
      status: 'SUCCESS',
      files_processed: 2,
      records_written: 4,
      rows_rejected: 6,
    });
    const rows = await query<{ id: string }>(`select id::text from raw.${table} order by id`);
    expect(rows.map((r) => r.id)).toEqual(['1', '1', '5', '5']);
    const rejected = await h.api<RejectedBody>('GET', `/api/v1/ingestions/${id}/rejected-rows`);
    const ofA = rejected.body.items.filter((r) => r.file_path.endsWith('/a.csv'));
    expect(ofA.map((r) => [r.line, r.error])).toEqual([
      [3, 'expected 2 fields, found 1'],
      [4, 'field "amount": value "abc" is not a valid numeric'],
      [5, 'expected 2 fields, found 3'],
    ]);
    expect(ofA.map((r) => r.raw)).toEqual(['2', '3,abc', '4,4.5,extra']);
  });

  it('past skip_rows_max or skip_rows_max_percent the file fails as a whole, naming the first rejected row', async () => {
    const lines = [
      ...Array.from({ length: 8 }, (_, i) => JSON.stringify({ id: i + 1 })),
      'oops',
      'oops again',
    ];
    const { id, table } = await h.createIngestion(
      { 'a.jsonl': `${lines.join('\n')}\n` },
      { on_error: 'skip_rows', skip_rows_max: 1 },
      'skipmax',
    );
    const run = await h.runAndWait(id);
    expect(run).toMatchObject({ status: 'FAILED', files_failed: 1, records_written: 0 });
    const f = await fileNamed(id, 'a.jsonl');
    expect(f?.error_message).toMatch(
      /^2 of 10 rows rejected, more than skip_rows_max \(1\); the first, line 9: /,
    );
    const exists = await h.sql`select to_regclass(${`raw.${table}`}) as t`;
    if (exists[0]?.t)
      expect(await query<{ n: number }>(`select count(*)::int as n from raw.${table}`)).toEqual([{ n: 0 }]);

    const pct = await h.createIngestion(
      { 'a.jsonl': `${lines.join('\n')}\n` },
      { on_error: 'skip_rows', skip_rows_max_percent: 10 },
      'skippct',
    );
    expect(await h.runAndWait(pct.id)).toMatchObject({ status: 'FAILED', files_failed: 1 });
    expect((await fileNamed(pct.id, 'a.jsonl'))?.error_message).toMatch(
      /more than skip_rows_max_percent \(10%\)/,
    );
    const rejected = await h.api<RejectedBody>('GET', `/api/v1/ingestions/${pct.id}/rejected-rows`);
    expect(rejected.body.items).toEqual([]);
  });

  it('on_error is validated and changes with PATCH', async () => {
    const bad = await h.api<{ error_code: string }>('POST', '/api/v1/ingestions', {
      name: 'bad_on_error',
      connection_id: await h.createS3Connection(),
      source: { bucket: 'b', format: 'jsonl', on_error: 'ignore' },
      destination: 'raw.bad_on_error',
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error_code).toBe('VALIDATION_ERROR');

    const { id, bucket } = await h.createIngestion({ 'a.jsonl': 'nope\n' }, {}, 'patchskip');
    expect(await h.runAndWait(id)).toMatchObject({ status: 'FAILED' });
    const patched = await h.api('PATCH', `/api/v1/ingestions/${id}`, { source: { on_error: 'skip_rows' } });
    expect(patched.status).toBe(200);
    await h.putObject(bucket, 'a.jsonl', `nope\n${JSON.stringify({ id: 1 })}\n`);
    expect(await h.runAndWait(id)).toMatchObject({ status: 'SUCCESS', records_written: 1, rows_rejected: 1 });
  });
});
