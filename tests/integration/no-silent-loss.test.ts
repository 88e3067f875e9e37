import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from '../helpers/harness.js';

/**
 * "Loaded" means every row of the file is in the table. On PostgreSQL 17 and earlier a line `\.`
 * ends CSV-mode COPY and the rest of the stream is dropped without an error; these files are large
 * enough (> 1 MiB) to take the COPY path, with the marker in the middle.
 */
let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

function jsonlWithMarker(count: number, markerAfter: number): string {
  const lines: string[] = [];
  for (let id = 1; id <= count; id++) {
    lines.push(JSON.stringify({ id, user: `user_${id % 97}`, note: 'x'.repeat(40), amount: id * 1.5 }));
    if (id === markerAfter) lines.push('\\.');
  }
  return `${lines.join('\n')}\n`;
}

function csvWithMarker(count: number, markerAfter: number, columns = 4): string {
  const lines = [columns === 1 ? 'v' : 'id,user,amount,note'];
  for (let id = 1; id <= count; id++) {
    lines.push(columns === 1 ? `value ${id}` : `${id},user_${id % 97},${id * 1.25},${'y'.repeat(16)}`);
    if (id === markerAfter) lines.push('\\.');
  }
  return `${lines.join('\n')}\n`;
}

async function files(id: string) {
  const res = await h.api<{
    items: { file_path: string; status: string; error_message: string | null; records_ingested: number }[];
  }>('GET', `/api/v1/ingestions/${id}/processed-files`);
  return res.body.items;
}

async function rowCount(table: string): Promise<number> {
  const exists = await h.sql`select to_regclass(${`raw.${table}`}) as t`;
  if (!exists[0]?.t) return 0;
  const [row] = await h.sql.unsafe(`select count(*)::int as n from raw.${table}`);
  return row!.n as number;
}

describe('a line "\\." in the middle of a file', () => {
  it('JSON lines: the file fails naming the line, and nothing of it is loaded (plain and .gz)', async () => {
    const text = jsonlWithMarker(20_000, 10_001);
    expect(text.length).toBeGreaterThan(1024 * 1024);
    const { id, table } = await h.createIngestion(
      { 'plain.jsonl': text, 'zipped.jsonl.gz': gzipSync(text) },
      {},
      'eod_json',
    );
    const run = await h.runAndWait(id);
    expect(run).toMatchObject({ files_processed: 0, files_failed: 2, records_written: 0 });
    expect(await rowCount(table)).toBe(0);
    for (const f of await files(id)) {
      expect(f.status).toBe('FAILED');
      // Line 10,002 of the file is the marker: not JSON, and named as such.
      expect(f.error_message).toMatch(/line 10002\b/);
    }
  });

  it('CSV: a one-column file keeps "\\." as a value and loads every row (plain and .gz)', async () => {
    const text = csvWithMarker(90_000, 45_001, 1);
    expect(text.length).toBeGreaterThan(1024 * 1024);
    const { id, table } = await h.createIngestion(
      { 'plain.csv': text, 'zipped.csv.gz': gzipSync(text) },
      { format: 'csv', pattern: '*.csv*' },
      'eod_csv1',
    );
    const run = await h.runAndWait(id);
    expect(run).toMatchObject({ status: 'SUCCESS', files_processed: 2, records_written: 2 * 90_001 });
    expect(await rowCount(table)).toBe(2 * 90_001);
    const [marker] = await h.sql.unsafe(`select count(*)::int as n from raw.${table} where v = '\\.'`);
    expect(marker!.n).toBe(2);
    const [last] = await h.sql.unsafe(`select count(*)::int as n from raw.${table} where v = 'value 90000'`);
    expect(last!.n).toBe(2);
  });

  it('CSV: a four-column file fails on the short row instead of stopping there', async () => {
    const text = csvWithMarker(30_000, 15_001);
    expect(text.length).toBeGreaterThan(1024 * 1024);
    const { id, table } = await h.createIngestion(
      { 'a.csv': text },
      { format: 'csv', pattern: '*.csv' },
      'eod_csv4',
    );
    const run = await h.runAndWait(id);
    expect(run).toMatchObject({ files_processed: 0, files_failed: 1, records_written: 0 });
    expect(await rowCount(table)).toBe(0);
    const [f] = await files(id);
    expect(f!.status).toBe('FAILED');
    // Header is line 1, so the marker is line 15,003.
    expect(f!.error_message).toMatch(/line 15003\b/);
  });

  it('CSV: a quoted multi-line value whose line is "\\." stays inside its value', async () => {
    const rows = ['id,note'];
    for (let id = 1; id <= 40_000; id++)
      rows.push(id === 20_000 ? `${id},"before\n\\.\nafter"` : `${id},plain`);
    const text = `${rows.join('\n')}\n`;
    expect(text.length).toBeGreaterThan(200_000);
    const { id, table } = await h.createIngestion(
      { 'q.csv': text },
      { format: 'csv', pattern: '*.csv' },
      'eod_csvq',
    );
    const run = await h.runAndWait(id);
    expect(run).toMatchObject({ status: 'SUCCESS', records_written: 40_000 });
    const [note] = await h.sql.unsafe(`select note from raw.${table} where id = 20000`);
    expect(note!.note).toBe('before\n\\.\nafter');
  });
});

describe('reconciliation: rows counted in the file against rows in the table', () => {
  it('fails a file whose rows the table did not all take, on the one-statement and the COPY path', async () => {
    const first = Array.from({ length: 10 }, (_, i) => JSON.stringify({ id: i, kind: 'first' })).join('\n');
    const { id, table, bucket } = await h.createIngestion({ 'a.jsonl': `${first}\n` }, {}, 'recon');
    expect(await h.runAndWait(id)).toMatchObject({ status: 'SUCCESS', records_written: 10 });

    // A trigger that silently swallows some rows: the kind of surprise the check is there for.
    await h.sql.unsafe(`
      create function raw.${table}_swallow() returns trigger language plpgsql as $$
      begin
        if new.id % 1000 = 7 then return null; end if;
        return new;
      end $$`);
    await h.sql.unsafe(
      `create trigger swallow before insert on raw.${table} for each row execute function raw.${table}_swallow()`,
    );
    const rows = (from: number, n: number) =>
      `${Array.from({ length: n }, (_, i) => JSON.stringify({ id: from + i, kind: 'x'.repeat(60) })).join('\n')}\n`;
    await h.putObject(bucket, 'small.jsonl', rows(1000, 100)); // one statement
    await h.putObject(bucket, 'large.jsonl', rows(100_000, 20_000)); // > 1 MiB: COPY
    const run = await h.runAndWait(id);
    expect(run).toMatchObject({ files_processed: 0, files_failed: 2, records_written: 0 });
    const failed = (await files(id)).filter((f) => f.status === 'FAILED');
    expect(failed.map((f) => f.file_path.split('/').pop()).sort()).toEqual(['large.jsonl', 'small.jsonl']);
    expect(failed.find((f) => f.file_path.endsWith('small.jsonl'))!.error_message).toBe(
      'the file has 100 records but 99 were loaded; the file was not loaded',
    );
    expect(failed.find((f) => f.file_path.endsWith('large.jsonl'))!.error_message).toBe(
      'the file has 20000 records but 19980 were loaded; the file was not loaded',
    );
    expect(await rowCount(table)).toBe(10);
  });
});
