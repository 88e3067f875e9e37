import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { csvRows, type Harness, jsonLines, type RunBody, startHarness } from '../helpers/harness.js';

/**
 * Seed 003's E2E-02: three files, a run; two more files, a second run that loads only those two.
 * The same scenario for JSON lines and CSV in MinIO, and for a local folder.
 */
let h: Harness;

beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

interface Source {
  connectionId: string;
  source: Record<string, unknown>;
  put(name: string, content: string): Promise<void>;
}

async function s3Source(format: 'jsonl' | 'csv'): Promise<Source> {
  const bucket = await h.createBucket();
  return {
    connectionId: await h.createS3Connection(),
    source: { bucket, prefix: 'landing/', pattern: `*.${format}`, format },
    put: (name, content) => h.putObject(bucket, `landing/${name}`, content),
  };
}

async function localSource(): Promise<Source> {
  const dir = await mkdtemp(path.join(tmpdir(), 'autoloader-local-'));
  await mkdir(path.join(dir, 'landing'));
  const conn = await h.api<{ id: string }>('POST', '/api/v1/connections', {
    name: `local-${path.basename(dir)}`,
    kind: 'local',
    config: { path: dir },
  });
  expect(conn.status).toBe(201);
  return {
    connectionId: conn.body.id,
    source: { prefix: 'landing/', pattern: '*.jsonl', format: 'jsonl' },
    put: (name, content) => writeFile(path.join(dir, 'landing', name), content),
  };
}

async function incrementalScenario(src: Source, ext: string, make: (first: number, count: number) => string) {
  for (let i = 0; i < 3; i++) await src.put(`data-00${i + 1}.${ext}`, make(i * 1000, 1000));
  const table = `events_${Math.random().toString(36).slice(2, 10)}`;
  const created = await h.api<{ id: string }>('POST', '/api/v1/ingestions', {
    name: table,
    connection_id: src.connectionId,
    source: src.source,
    destination: `raw.${table}`,
  });
  expect(created.status).toBe(201);
  const id = created.body.id;

  const first = await h.runAndWait(id);
  expect(first).toMatchObject({
    status: 'SUCCESS',
    files_discovered: 3,
    files_processed: 3,
    records_written: 3000,
  });
  const [c1] = await h.sql.unsafe(`select count(*)::int as n from raw.${table}`);
  expect(c1?.n).toBe(3000);

  for (let i = 3; i < 5; i++) await src.put(`data-00${i + 1}.${ext}`, make(i * 1000, 1000));
  const second = await h.runAndWait(id);
  expect(second).toMatchObject({
    status: 'SUCCESS',
    files_discovered: 5,
    files_processed: 2,
    files_skipped: 3,
    records_written: 2000,
  });

  const [c2] = await h.sql.unsafe(
    `select count(*)::int as n, count(distinct id)::int as d, min(id)::int as lo, max(id)::int as hi from raw.${table}`,
  );
  expect(c2).toEqual({ n: 5000, d: 5000, lo: 0, hi: 4999 });

  const files = await h.api<{ items: { status: string; records_ingested: number }[] }>(
    'GET',
    `/api/v1/ingestions/${id}/processed-files?status=SUCCESS`,
  );
  expect(files.body.items).toHaveLength(5);
  expect(files.body.items.every((f) => f.records_ingested === 1000)).toBe(true);

  const runs = await h.api<{ items: RunBody[] }>('GET', `/api/v1/ingestions/${id}/runs`);
  expect(runs.body.items.map((r) => [r.files_processed, r.records_written])).toEqual([
    [2, 2000],
    [3, 3000],
  ]);
  return { id, table };
}

describe('incremental load (E2E-02)', () => {
  it('loads only new JSON-lines files from S3 on the second run', async () => {
    const { table } = await incrementalScenario(await s3Source('jsonl'), 'jsonl', jsonLines);
    const types = await h.sql<{ column_name: string; data_type: string }[]>`
      select column_name, data_type from information_schema.columns
      where table_schema = 'raw' and table_name = ${table} order by ordinal_position`;
    expect(types.map((t) => [t.column_name, t.data_type])).toEqual([
      ['id', 'bigint'],
      ['user', 'text'],
      ['amount', 'numeric'],
      ['ts', 'timestamp with time zone'],
      ['tags', 'jsonb'],
      ['_source_file', 'text'],
      ['_ingested_at', 'timestamp with time zone'],
      ['_run_id', 'text'],
    ]);
  });

  it('loads only new CSV files from S3 on the second run', async () => {
    await incrementalScenario(await s3Source('csv'), 'csv', csvRows);
  });

  it('loads only new files from a local folder on the second run', async () => {
    await incrementalScenario(await localSource(), 'jsonl', jsonLines);
  });
});
