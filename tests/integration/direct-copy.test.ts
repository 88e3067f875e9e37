import { readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { Readable } from 'node:stream';
import { defaultPayloadConverter } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createDb, type Sql } from '../../src/db/client.js';
import { csvOptionsSchema } from '../../src/domain/schemas.js';
import { type LoadFileInput, loadInTransaction } from '../../src/load/load-file.js';
import { workflowIds } from '../../src/temporal/ids.js';
import { seededRandom } from '../helpers/fault-plan.js';
import { type Harness, startHarness } from '../helpers/harness.js';

/**
 * The direct path (one COPY from JSON lines into the typed columns) against the staged path on the
 * same bytes, in a real Postgres: it must load exactly what the staged path loads, and give a file
 * back to the staged path — with nothing lost — whenever it cannot promise that.
 */
let sql: Sql;
let close: () => Promise<void>;
let h: Harness;

beforeAll(async () => {
  ({ sql, close } = createDb(inject('databaseUrl'), { max: 4 }));
  await sql`create schema if not exists direct_copy`;
  h = await startHarness({ parallelism: 2, env: { LOAD_DIRECT_COPY: 'true' } });
});
afterAll(async () => {
  await h?.close();
  await close?.();
});

/** The same "random" lines on every run. */
const rng = seededRandom;

const texts = [
  'plain',
  'quote " inside',
  'back\\slash',
  'tab\there',
  'line\nbreak',
  'é ü 😀',
  '',
  '\\N',
  '\\.',
  'a,b',
];
const numbers = [
  '0',
  '1',
  '-7',
  '12.50',
  '0.000',
  '123456789012345678901234567890.123456789',
  '-3.1415926535897932384626',
];

/** One line of every kind of value each column type meets, keys in varying order, some absent. */
function line(id: number, r: () => number): string {
  const pick = <T>(xs: T[]) => xs[Math.floor(r() * xs.length)]!;
  const fields: [string, string][] = [['id', String(id)]];
  if (r() < 0.9) fields.push(['amount', r() < 0.1 ? 'null' : pick(numbers)]);
  if (r() < 0.9) fields.push(['note', r() < 0.1 ? 'null' : JSON.stringify(pick(texts))]);
  // A text column that also receives numbers and booleans: ->> gives their JSON text.
  if (r() < 0.9) fields.push(['code', pick([JSON.stringify(pick(texts)), pick(numbers), 'true', 'false'])]);
  if (r() < 0.9) fields.push(['flag', pick(['true', 'false', 'null', '"t"', '"no"'])]);
  if (r() < 0.9)
    fields.push([
      'ts',
      JSON.stringify(pick(['2025-01-02T03:04:05.123456Z', '2025-06-30 12:00:00+02', '2024-02-29'])),
    ]);
  if (r() < 0.9)
    fields.push([
      'doc',
      pick([
        'null',
        '{"x": 1.50, "y": [true, null, "s\\"q"], "z": {"w": "\\u00e9\\t"}}',
        '[]',
        '"just a string"',
        '12.340',
        `{"n": ${id}, "dup": 1, "dup": 2}`,
      ]),
    ]);
  for (let i = fields.length - 1; i > 1; i--) {
    const j = 1 + Math.floor(r() * i);
    [fields[i], fields[j]] = [fields[j]!, fields[i]!];
  }
  const ws = r() < 0.5 ? ' ' : '';
  return `{${fields.map(([k, v]) => `"${k}":${ws}${v}`).join(`,${ws}`)}}`;
}

/** About 2 MB: past the 1 MB a file is read whole below, so it takes the large-file paths. */
function file(lines: number, seed: number, extra?: (id: number) => string | undefined): Buffer {
  const r = rng(seed);
  const out: string[] = [];
  for (let id = 1; id <= lines; id++) out.push(extra?.(id) ?? line(id, r));
  return Buffer.from(`${out.join('\n')}\n`);
}

const ddl = `(id bigint, amount numeric, note text, code text, flag boolean, ts timestamptz, doc jsonb,
  _source_file text NOT NULL, _ingested_at timestamptz NOT NULL DEFAULT now(), _run_id text NOT NULL)`;

async function table(name: string): Promise<{ schema: string; table: string }> {
  await sql.unsafe(`drop table if exists direct_copy.${name}; create table direct_copy.${name} ${ddl}`);
  await sql.unsafe(`create index on direct_copy.${name} (_source_file)`);
  return { schema: 'direct_copy', table: name };
}

async function load(
  target: { schema: string; table: string },
  content: Buffer,
  directCopy: boolean,
  more: Partial<LoadFileInput> = {},
) {
  return sql.begin((tx) =>
    loadInTransaction(tx, {
      target,
      sourceUri: 's3://bucket/events.jsonl',
      runId: 'run_direct',
      format: 'jsonl',
      csv: csvOptionsSchema.parse({}),
      gzip: false,
      // In 64 KiB chunks, as a store's body arrives: the first megabyte is read ahead, the rest streams.
      body: Readable.from(chunks(content, 64 * 1024)),
      schemaMode: 'add_columns',
      ddl: sql,
      directCopy,
      lockFile: (q) => q`select 1`,
      complete: async (_facts, q) => ({ statement: q`select 1` }),
      ...more,
    } satisfies LoadFileInput),
  );
}

function chunks(content: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < content.length; i += size) out.push(content.subarray(i, i + size));
  return out;
}

/** The rows as JSON (lineage times and run left out), in id order. */
async function rows(t: { table: string }): Promise<string[]> {
  const r = await sql.unsafe<{ row: string }[]>(
    `select (to_jsonb(t) - '_ingested_at' - '_run_id')::text as row from direct_copy.${t.table} t order by id`,
  );
  return r.map((x) => x.row);
}

/** loadedDirect summed over the processFiles results of the ingestion's last run (its execution chain). */
async function filesLoadedDirect(ingestionId: string): Promise<number> {
  let total = 0;
  let runId: string | undefined;
  do {
    const history = await h.client.workflow
      .getHandle(workflowIds.ingestion(ingestionId), runId)
      .fetchHistory();
    for (const e of history.events ?? []) {
      const payload = e.activityTaskCompletedEventAttributes?.result?.payloads?.[0];
      if (!payload) continue;
      const result = defaultPayloadConverter.fromPayload<{ loadedDirect?: number }>(payload);
      total += result?.loadedDirect ?? 0;
    }
    runId =
      history.events?.[0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId || undefined;
  } while (runId);
  return total;
}

// This process's spill dirs (its harness worker's): test files beside it load by the direct path too.
const spills = async () =>
  (await readdir(tmpdir())).filter((f) => f.startsWith(`autoloader-direct-${process.pid}-`));

describe('the direct path', () => {
  it('loads exactly the rows the staged path loads, value for value', async () => {
    const content = file(12_000, 1);
    expect(content.length).toBeGreaterThan(1_200_000);
    const direct = await load(await table('same_direct'), content, true);
    const staged = await load(await table('same_staged'), content, false);
    expect(direct).toMatchObject({ path: 'direct', records: 12_000 });
    expect(staged).toMatchObject({ path: 'staged', records: 12_000 });
    const [a, b] = [await rows({ table: 'same_direct' }), await rows({ table: 'same_staged' })];
    expect(a).toHaveLength(12_000);
    expect(a).toEqual(b);
    // Some lines hold what only the staged path may load (a jsonb value with a key twice is fine
    // for both): the comparison above covered every kind of value of the generator.
    expect(new Set(a.map((x) => JSON.parse(x).note)).size).toBeGreaterThan(5);
  });

  it('hands a file with a new key late in it to the staged path: every row loads, the column is added', async () => {
    const late = 11_500;
    const content = file(12_000, 2, (id) => (id === late ? `{"id": ${id}, "brand_new": 42}` : undefined));
    // Past the first megabyte the direct path checks before it starts: found while copying.
    expect(content.indexOf('brand_new')).toBeGreaterThan(1_100_000);
    const t = await table('late_key');
    const result = await load(t, content, true);
    expect(result.path).toBe('staged');
    expect(result.stagedBecause).toBe(`line ${late}: a key the table has no column for`);
    expect(result.records).toBe(12_000);
    expect(result.columnsAdded.map((c) => c.name)).toEqual(['brand_new']);
    const [row] = await sql.unsafe(
      `select count(*)::int as n, sum(brand_new)::int as s from direct_copy.late_key`,
    );
    expect(row).toEqual({ n: 12_000, s: 42 });
    expect(await spills()).toEqual([]);
  });

  it('past its bound on the local copy, stops the attempt and loads the file staged the next time', async () => {
    const content = file(12_000, 6, (id) => (id === 11_000 ? `{"id": ${id}, "later_key": 7}` : undefined));
    expect(content.indexOf('later_key')).toBeGreaterThan(1_100_000);
    const t = await table('past_bound');
    const bounded = { directSpillMaxBytes: 1_100_000 };
    await expect(load(t, content, true, bounded)).rejects.toThrow(
      /^line 11000: a key the table has no column for; past 1100000 bytes .* the next loads the file through staging$/,
    );
    expect(await sql.unsafe('select count(*)::int as n from direct_copy.past_bound')).toEqual([{ n: 0 }]);
    const retried = await load(t, content, true, bounded);
    expect(retried).toMatchObject({ path: 'staged', records: 12_000 });
    expect(retried.stagedBecause).toBe('an earlier attempt found it needs the staged path');
    expect(await spills()).toEqual([]);
  });

  it('hands a value its column refuses to the staged path, which fails the file naming it as before', async () => {
    const content = file(12_000, 3, (id) => (id === 9_000 ? `{"id": ${id}, "flag": "maybe"}` : undefined));
    const errorOf = (p: Promise<unknown>) =>
      p.then(
        () => 'loaded',
        (err: Error) => err.message,
      );
    const direct = await errorOf(load(await table('refused_direct'), content, true));
    const staged = await errorOf(load(await table('refused_staged'), content, false));
    expect(direct).not.toBe('loaded');
    expect(direct).toBe(staged);
    expect(await sql.unsafe('select count(*)::int as n from direct_copy.refused_direct')).toEqual([{ n: 0 }]);
    expect(await spills()).toEqual([]);
  });

  it('loads a large file of a real run by the direct path, every row once, and again when the file is rewritten', async () => {
    // The seed decides the columns' types: the ones the generator's values fit.
    const seed =
      '{"id": 0, "amount": 1.5, "note": "n", "code": "c", "flag": true, "ts": "2025-01-01T00:00:00Z", "doc": {}}\n';
    const ing = await h.createIngestion({ 'a-seed.jsonl': seed }, { pattern: '*.jsonl' });
    expect(await h.runAndWait(ing.id)).toMatchObject({ status: 'SUCCESS', records_written: 1 });
    await h.putObject(ing.bucket, 'b-big.jsonl', file(12_000, 4).toString());
    const big = await h.runAndWait(ing.id);
    const failed =
      await h.sql`select error_message from autoloader.processed_files where ingestion_id = ${ing.id} and status = 'FAILED'`;
    expect({ ...big, failed }).toMatchObject({
      status: 'SUCCESS',
      files_processed: 1,
      records_written: 12_000,
      failed: [],
    });
    // It went straight into the columns: the run's processFiles results (what the Temporal UI shows) say so.
    expect(await filesLoadedDirect(ing.id)).toBe(1);
    await h.putObject(ing.bucket, 'b-big.jsonl', file(11_000, 5).toString());
    expect(await h.runAndWait(ing.id)).toMatchObject({
      status: 'SUCCESS',
      files_processed: 1,
      records_written: 11_000,
    });
    expect(await filesLoadedDirect(ing.id)).toBe(1);
    const [n] = await h.sql.unsafe(`select count(*)::int as n from raw.${ing.table}`);
    expect(n?.n).toBe(11_001);
    // The lineage of every row: the file, the run, and one load time (its transaction's start,
    // before the file's state was written in that transaction).
    const [lineage] = await h.sql.unsafe(
      `select count(distinct t._ingested_at)::int as times, count(distinct t._run_id)::int as runs,
              bool_and(t._ingested_at <= p.processed_at and t._ingested_at > p.processed_at - interval '1 minute') as in_load,
              bool_and(t._run_id = p.run_id::text) as same_run
       from raw.${ing.table} t join autoloader.processed_files p on p.file_path = t._source_file
       where p.ingestion_id = $1 and t._source_file like '%/b-big.jsonl'`,
      [ing.id],
    );
    expect(lineage).toEqual({ times: 1, runs: 1, in_load: true, same_run: true });
  });
});
