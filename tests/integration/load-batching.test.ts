import { finished } from 'node:stream/promises';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities } from '../../src/activities/index.js';
import { loadConfig } from '../../src/config.js';
import { claimBatch } from '../../src/ledger/processed-files.js';
import type { ObjectStore } from '../../src/sources/types.js';
import { activityDepsFromConfig } from '../../src/worker.js';
import { type Harness, jsonLines, startHarness } from '../helpers/harness.js';

/**
 * Discovery over unchanged files writes nothing, and small files commit several per transaction
 * without one file's trouble reaching its neighbours.
 */
let h: Harness;

beforeAll(async () => {
  h = await startHarness({ parallelism: 1 });
});
afterAll(async () => {
  await h?.close();
});

interface FileRow {
  path: string;
  status: string;
  error_message: string | null;
}

async function filesOf(ingestionId: string): Promise<Map<string, FileRow>> {
  const rows = await h.sql<FileRow[]>`
    select regexp_replace(file_path, '^.*/', '') as path, status, error_message
    from autoloader.processed_files where ingestion_id = ${ingestionId} and scope = 'live'`;
  return new Map(rows.map((r) => [r.path, r]));
}

/** Every version of the ingestion's ledger rows: a write or a row lock changes xmin, xmax or ctid. */
async function rowVersions(ingestionId: string): Promise<string[]> {
  const rows = await h.sql<{ v: string }[]>`
    select file_path || ' ' || xmin::text || ' ' || xmax::text || ' ' || ctid::text as v
    from autoloader.processed_files where ingestion_id = ${ingestionId} order by file_path`;
  return rows.map((r) => r.v);
}

/** An ingestion whose table exists and whose columns are a committed schema version: small files then load together. */
async function loadedIngestion() {
  const ing = await h.createIngestion({ 'a-seed.jsonl': jsonLines(1, 5) }, { pattern: '*.jsonl' });
  expect(await h.runAndWait(ing.id)).toMatchObject({ status: 'SUCCESS', records_written: 5 });
  return ing;
}

describe('discovery', () => {
  it('a no-op run writes no row version of processed_files; a changed file is still queued', async () => {
    const files: Record<string, string> = {};
    for (let i = 0; i < 12; i++) files[`f-${String(i).padStart(2, '0')}.jsonl`] = jsonLines(i * 10, 10);
    const ing = await h.createIngestion(files, { pattern: '*.jsonl' });
    expect(await h.runAndWait(ing.id)).toMatchObject({ status: 'SUCCESS', files_processed: 12 });

    const before = await rowVersions(ing.id);
    expect(await h.runAndWait(ing.id)).toMatchObject({
      status: 'SUCCESS',
      files_discovered: 12,
      files_processed: 0,
      files_skipped: 12,
    });
    // Not even a row lock: ON CONFLICT DO UPDATE … WHERE false would have set xmax on every row.
    expect(await rowVersions(ing.id)).toEqual(before);

    await h.putObject(ing.bucket, 'f-03.jsonl', jsonLines(1000, 3));
    expect(await h.runAndWait(ing.id)).toMatchObject({
      status: 'SUCCESS',
      files_processed: 1,
      files_skipped: 11,
      records_written: 3,
    });
    const after = await rowVersions(ing.id);
    const changed = after.filter((v, i) => v !== before[i]);
    expect(changed).toHaveLength(1);
    expect(changed[0]).toMatch(/f-03\.jsonl /);
    const [n] = await h.sql.unsafe(`select count(*)::int as n from raw.${ing.table}`);
    expect(n?.n).toBe(11 * 10 + 3);
  });
});

describe('small files several per transaction', () => {
  it('a malformed file among them fails alone with its line; the others load once', async () => {
    const ing = await loadedIngestion();
    for (let i = 0; i < 9; i++) {
      const body = i === 4 ? '{"id": 500}\n{"id": 501}\n{"id": 502,\n' : jsonLines(100 + i * 10, 10);
      await h.putObject(ing.bucket, `b-${i}.jsonl`, body);
    }
    expect(await h.runAndWait(ing.id)).toMatchObject({
      status: 'PARTIAL_SUCCESS',
      files_processed: 8,
      files_failed: 1,
      records_written: 80,
    });
    const files = await filesOf(ing.id);
    expect(files.get('b-4.jsonl')).toMatchObject({ status: 'FAILED' });
    expect(files.get('b-4.jsonl')!.error_message).toMatch(/^line 3: invalid input syntax for type json/);
    for (let i = 0; i < 9; i++)
      if (i !== 4) expect(files.get(`b-${i}.jsonl`), `b-${i}`).toMatchObject({ status: 'SUCCESS' });
    // The bad file went alone; its 8 neighbours committed together, ledger rows and table rows in
    // one transaction (one xmin), not each alone after the bad file sent the batch back.
    const commits = await h.sql.unsafe<{ ledger: string[]; rows: string[] }[]>(
      `select (select array_agg(distinct xmin::text) from autoloader.processed_files
                where ingestion_id = $1 and file_path like '%/b-%' and status = 'SUCCESS') as ledger,
              (select array_agg(distinct xmin::text) from raw.${ing.table} where _source_file like '%/b-%') as rows`,
      [ing.id],
    );
    expect(commits[0]!.ledger).toHaveLength(1);
    expect(commits[0]!.rows).toEqual(commits[0]!.ledger);
    const [c] = await h.sql.unsafe(
      `select count(*)::int as n, count(distinct id)::int as ids, count(*) filter (where id between 500 and 502)::int as bad
       from raw.${ing.table}`,
    );
    expect(c).toEqual({ n: 5 + 80, ids: 5 + 80, bad: 0 });
  });

  it("a new table's first small files: the first creates it alone, the rest commit together", async () => {
    const files: Record<string, string> = {};
    for (let i = 0; i < 8; i++) files[`n-${i}.jsonl`] = jsonLines(i * 10, 10);
    const ing = await h.createIngestion(files, { pattern: '*.jsonl' });
    expect(await h.runAndWait(ing.id)).toMatchObject({
      status: 'SUCCESS',
      files_processed: 8,
      records_written: 80,
    });
    // One lane, one group of eight: n-0 in a transaction of its own (it made the table), the seven
    // after it in one. Each alone, as before, would be eight transactions.
    const [commits] = await h.sql.unsafe<{ first: string[]; rest: string[]; rows: string[] }[]>(
      `select (select array_agg(distinct xmin::text) from autoloader.processed_files
                where ingestion_id = $1 and file_path like '%/n-0.jsonl') as first,
              (select array_agg(distinct xmin::text) from autoloader.processed_files
                where ingestion_id = $1 and file_path not like '%/n-0.jsonl' and status = 'SUCCESS') as rest,
              (select array_agg(distinct xmin::text) from raw.${ing.table} where _source_file not like '%/n-0.jsonl') as rows`,
      [ing.id],
    );
    expect(commits!.first).toHaveLength(1);
    expect(commits!.rest).toHaveLength(1);
    expect(commits!.rest).not.toEqual(commits!.first);
    expect(commits!.rows).toEqual(commits!.rest);
    const [c] = await h.sql.unsafe(
      `select count(*)::int as n, count(distinct id)::int as ids from raw.${ing.table}`,
    );
    expect(c).toEqual({ n: 80, ids: 80 });
  });
  it("reads a group's files a few at once, and loads each once in its place", async () => {
    const ing = await loadedIngestion();
    for (let i = 0; i < 12; i++)
      await h.putObject(ing.bucket, `r-${String(i).padStart(2, '0')}.jsonl`, jsonLines(300 + i * 10, 10));
    // The real activities over the real store, whose reads are counted from open to the body's end.
    const deps = activityDepsFromConfig(loadConfig(), h.sql);
    let reading = 0;
    let most = 0;
    const counted = (store: ObjectStore): ObjectStore =>
      new Proxy(store, {
        get(target, name) {
          if (name !== 'open') {
            const value = Reflect.get(target, name);
            return typeof value === 'function' ? value.bind(target) : value;
          }
          return async (bucket: string | undefined, key: string) => {
            reading++;
            most = Math.max(most, reading);
            try {
              const opened = await target.open(bucket, key);
              void finished(opened.body)
                .catch(() => undefined)
                .finally(() => reading--);
              return opened;
            } catch (err) {
              reading--;
              throw err;
            }
          };
        },
      });
    const activities = createActivities({ ...deps, stores: async (c) => counted(await deps.stores(c)) });
    const runId = `run_reads_${Date.now()}`;
    const env = () => new MockActivityEnvironment();
    await env().run(activities.startRun, {
      runId,
      ingestionId: ing.id,
      trigger: 'test',
      workflowId: `test/${runId}`,
      scope: 'live',
    });
    expect(
      await env().run(activities.discoverFiles, { runId, ingestionId: ing.id, scope: 'live' }),
    ).toMatchObject({ filesQueued: 12 });
    const result = await env().run(activities.processFiles, {
      runId,
      ingestionId: ing.id,
      lane: 'lane-0',
      maxFiles: 100,
      maxBytes: 1024 ** 3,
    });
    expect(result).toMatchObject({ claimed: 12, succeeded: 12, failed: 0, records: 120 });
    // One at a time, the lane would wait on the store for each file in turn.
    expect(most).toBeGreaterThan(1);
    expect(reading).toBe(0);
    const [c] = await h.sql.unsafe(
      `select count(*)::int as n, count(distinct id)::int as ids, count(distinct _source_file)::int as files from raw.${ing.table} where _source_file like '%/r-%'`,
    );
    expect(c).toEqual({ n: 120, ids: 120, files: 12 });
  });

  it('a transaction of small files killed half-way leaves none of them recorded; the retry loads each once', async () => {
    const ing = await loadedIngestion();
    const uri = (name: string) => `s3://${ing.bucket}/${name}`;
    for (let i = 0; i < 6; i++) await h.putObject(ing.bucket, `c-${i}.jsonl`, jsonLines(200 + i * 10, 10));
    // A row of c-3 from "an earlier load", locked by this test: the load of c-3 waits on it
    // (deleting the file's earlier rows) while the loads before it in its transaction are done.
    await h.sql.unsafe(
      `insert into raw.${ing.table} (id, _source_file, _run_id) values (999, $1, 'earlier')`,
      [uri('c-3.jsonl')],
    );
    const holder = await h.sql.reserve();
    try {
      await holder`begin`;
      await holder.unsafe(`select 1 from raw.${ing.table} where _source_file = $1 for update`, [
        uri('c-3.jsonl'),
      ]);
      const [held] = await holder<{ pid: number }[]>`select pg_backend_pid() as pid`;
      const holderPid = held!.pid;

      const started = await h.api<{ id: string }>('POST', `/api/v1/ingestions/${ing.id}/run`);
      expect(started.status).toBe(202);
      const waiting = await waitFor(async () => {
        const [row] = await h.sql<{ pid: number }[]>`
          select pid from pg_stat_activity where ${holderPid}::int = any(pg_blocking_pids(pid))`;
        return row?.pid;
      });

      // The transaction has loaded c-0…c-2 and waits in c-3: from outside, nothing of it shows.
      const during = await filesOf(ing.id);
      for (let i = 0; i < 6; i++) expect(during.get(`c-${i}.jsonl`)?.status, `c-${i}`).not.toBe('SUCCESS');
      const [seen] = await h.sql.unsafe(`select count(*)::int as n from raw.${ing.table}`);
      expect(seen?.n).toBe(5 + 1);

      // The crash: its connection is gone, the transaction rolls back as a whole.
      await h.sql`select pg_terminate_backend(${waiting}::int)`;
      await holder`rollback`;
    } finally {
      holder.release();
    }
    await h.waitForIngestionIdle(ing.id);
    const files = await filesOf(ing.id);
    for (let i = 0; i < 6; i++)
      expect(files.get(`c-${i}.jsonl`), `c-${i}`).toMatchObject({ status: 'SUCCESS' });
    const [c] = await h.sql.unsafe(
      `select count(*)::int as n, count(distinct id)::int as ids, count(*) filter (where id = 999)::int as earlier
       from raw.${ing.table}`,
    );
    expect(c).toEqual({ n: 5 + 60, ids: 5 + 60, earlier: 0 });
  });
  it('rows a trigger swallows from one file of the batch: that file fails its reconciliation alone, the others load', async () => {
    const ing = await loadedIngestion();
    await h.sql.unsafe(`
      create function raw.${ing.table}_swallow() returns trigger language plpgsql as $$
      begin
        if new.id = 307 then return null; end if;
        return new;
      end $$`);
    await h.sql.unsafe(
      `create trigger swallow before insert on raw.${ing.table} for each row execute function raw.${ing.table}_swallow()`,
    );
    for (let i = 0; i < 4; i++) await h.putObject(ing.bucket, `d-${i}.jsonl`, jsonLines(300 + i * 10, 10));
    expect(await h.runAndWait(ing.id)).toMatchObject({
      status: 'PARTIAL_SUCCESS',
      files_processed: 3,
      files_failed: 1,
      records_written: 30,
    });
    const files = await filesOf(ing.id);
    expect(files.get('d-0.jsonl')).toMatchObject({
      status: 'FAILED',
      error_message: 'the file has 10 records but 9 were loaded; the file was not loaded',
    });
    for (let i = 1; i < 4; i++)
      expect(files.get(`d-${i}.jsonl`), `d-${i}`).toMatchObject({ status: 'SUCCESS' });
    const [c] = await h.sql.unsafe(
      `select count(*)::int as n, count(*) filter (where id between 300 and 309)::int as d0 from raw.${ing.table}`,
    );
    expect(c).toEqual({ n: 5 + 30, d0: 0 });
  });
});

describe('claims', () => {
  it('a lane whose claim meets another claim in flight waits for it, and takes what that claim left', async () => {
    // Two queued files that each fill a lane's byte budget: a claim locks both candidates but keeps
    // one. A second lane claiming meanwhile used to find nothing unlocked and end, as if the queue
    // were empty: the run then loaded with one lane fewer.
    const ing = await h.createIngestion({}, { pattern: '*.jsonl' });
    const runId = `claim-race-${ing.id}`;
    await h.sql`insert into autoloader.runs (id, ingestion_id, status, trigger, workflow_id)
                values (${runId}, ${ing.id}, 'RUNNING', 'manual', ${runId})`;
    await h.sql`insert into autoloader.processed_files
                  (ingestion_id, scope, run_id, file_path, file_size_bytes, status)
                select ${ing.id}, 'live', ${runId}, 's3://b/claim-' || n || '.jsonl', 1000, 'DISCOVERED'
                from generate_series(1, 2) n`;
    const budget = { ingestionId: ing.id, runId, maxFiles: 200, maxBytes: 1000 };

    const holder = await h.sql.reserve();
    try {
      // Lane A's claim, held open at the point where it has locked every candidate and taken one.
      await holder`begin`;
      const locked = await holder<{ id: number }[]>`
        select id::float8 as id from autoloader.processed_files
        where run_id = ${runId} and status = 'DISCOVERED' order by id for update`;
      await holder`update autoloader.processed_files set status = 'PROCESSING', claimed_by = 'lane-a'
                   where id = ${locked[0]!.id}`;
      const laneB = claimBatch(h.sql, { ...budget, lane: 'lane-b' });
      let settled = false;
      void laneB.finally(() => {
        settled = true;
      });
      // Lane B is waiting on A's row lock (or, before the fix, has already answered nothing).
      await waitFor(async () => {
        if (settled) return true;
        const [w] = await h.sql<{ n: number }[]>`
          select count(*)::int as n from pg_stat_activity
          where wait_event_type = 'Lock' and query like '%processed_files%'`;
        return w!.n > 0 ? true : undefined;
      });
      await holder`commit`;
      const took = await laneB;
      expect(took.map((f) => f.filePath)).toEqual(['s3://b/claim-2.jsonl']);
      // And with nothing left queued, a claim answers empty at once.
      expect(await claimBatch(h.sql, { ...budget, lane: 'lane-c' })).toEqual([]);
    } finally {
      holder.release();
    }
  });
});

/** Polls `probe` until it answers (a condition, not a timer: each round waits for a query). */
async function waitFor<T>(probe: () => Promise<T | undefined>): Promise<T> {
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
  }
}
