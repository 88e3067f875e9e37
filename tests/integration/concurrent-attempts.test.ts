import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities } from '../../src/activities/index.js';
import { loadConfig } from '../../src/config.js';
import { waitFor } from '../../src/dev/service.js';
import { activityDepsFromConfig } from '../../src/worker.js';
import { type Harness, jsonLines, startHarness } from '../helpers/harness.js';

/**
 * Temporal retries an activity it believes dead, but the first attempt may still be running (a
 * zombie: a worker that lost its connection, a long GC pause). Both attempts then load the same
 * files at the same time. The real activities, against the real Postgres and MinIO, run twice in
 * parallel under the same lane: every file must end up loaded exactly once.
 */
let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

const waitingOn = (table: string, n: number) =>
  waitFor(
    `${n} loads waiting on raw.${table}`,
    async () => {
      const [r] = await h.sql<{ n: number }[]>`
        select count(*)::int as n from pg_locks where relation = ${`raw.${table}`}::regclass and not granted`;
      return r!.n >= n ? true : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 20 },
  );

describe('two attempts of the same batch at once', () => {
  it('load every file once: the second commit of a file rolls back', async () => {
    // A first run creates the table and its schema version, so the attempts below need no DDL.
    const { id, bucket, table } = await h.createIngestion(
      { 'warm.jsonl': jsonLines(900_000, 10) },
      {},
      'zombie',
    );
    expect(await h.runAndWait(id)).toMatchObject({ status: 'SUCCESS', records_written: 10 });
    let expected = 10;
    for (let i = 0; i < 20; i++) {
      await h.putObject(bucket, `small-${String(i).padStart(2, '0')}.jsonl`, jsonLines(i * 100, 100));
      expected += 100;
    }
    // Two files over the 1 MiB cut-over take the COPY path.
    await h.putObject(bucket, 'large-a.jsonl', jsonLines(100_000, 12_000));
    await h.putObject(bucket, 'large-b.jsonl', jsonLines(200_000, 12_000));
    expected += 24_000;

    const activities = createActivities(activityDepsFromConfig(loadConfig(), h.sql));
    const runId = `run_zombie_${Date.now()}`;
    const env = () => new MockActivityEnvironment();
    await env().run(activities.startRun, {
      runId,
      ingestionId: id,
      trigger: 'test',
      workflowId: `test/${runId}`,
      scope: 'live',
    });
    const discovered = (await env().run(activities.discoverFiles, {
      runId,
      ingestionId: id,
      scope: 'live',
    })) as { filesQueued: number };
    expect(discovered.filesQueued).toBe(22);

    // Each attempt claims the batch, then waits at its first file's DELETE; released, both have
    // deleted and inserted before either commits.
    const { release } = await h.lockTable(table);
    const batch = { runId, ingestionId: id, lane: 'lane-0', maxFiles: 100, maxBytes: 1024 ** 3 };
    const first = env().run(activities.processFiles, batch);
    await waitingOn(table, 1);
    // The "retry": the same lane, so it finds the files the first attempt still holds.
    const second = env().run(activities.processFiles, batch);
    await waitingOn(table, 2);
    await release();
    const results = (await Promise.all([first, second])) as { claimed: number; failed: number }[];
    // The first attempt holds the row of the file it is loading (large-a, taking the COPY path):
    // the second claims every other file.
    expect(results.map((r) => [r.claimed, r.failed])).toEqual([
      [22, 0],
      [21, 0],
    ]);

    const [rows] = await h.sql.unsafe(
      `select count(*)::int as n, count(distinct id)::int as d, count(distinct _source_file)::int as f from raw.${table}`,
    );
    expect(rows).toEqual({ n: expected, d: expected, f: 23 });
    const [state] = await h.sql<{ success: number; records: number }[]>`
      select count(*) filter (where status = 'SUCCESS')::int as success,
             coalesce(sum(records_ingested), 0)::int as records
      from autoloader.processed_files where ingestion_id = ${id}`;
    expect(state).toEqual({ success: 23, records: expected });
  });
});

describe('small files in a table already under way', () => {
  it('new fields, misfit values and broken lines among small files get the same outcome as ever', async () => {
    const warm: Record<string, string> = {};
    for (let i = 0; i < 6; i++) warm[`warm-${i}.jsonl`] = jsonLines(i * 10, 10);
    const { id, bucket, table } = await h.createIngestion(warm, {}, 'smallpath');
    expect(await h.runAndWait(id)).toMatchObject({ status: 'SUCCESS', records_written: 60 });

    await h.putObject(bucket, 'a-plain.jsonl', jsonLines(1000, 50));
    await h.putObject(bucket, 'b-new-field.jsonl', '{"id": 2000, "colour": "red"}\n{"id": 2001}\n');
    await h.putObject(bucket, 'c-misfit.jsonl', '{"id": 3000}\n{"id": "three thousand and one"}\n');
    await h.putObject(bucket, 'd-broken.jsonl', '{"id": 4000}\n{"id": 4001\n');
    await h.putObject(bucket, 'warm-0.jsonl', jsonLines(100_000, 12));
    const run = await h.runAndWait(id);
    expect(run).toMatchObject({ status: 'PARTIAL_SUCCESS', files_processed: 3, files_failed: 2 });

    const files = await h.api<{
      items: { file_path: string; status: string; error_message: string | null }[];
    }>('GET', `/api/v1/ingestions/${id}/processed-files?limit=100`);
    const byName = Object.fromEntries(files.body.items.map((f) => [f.file_path.split('/').pop(), f]));
    expect(byName['c-misfit.jsonl']).toMatchObject({ status: 'FAILED' });
    expect(byName['c-misfit.jsonl']!.error_message).toMatch(
      /invalid input syntax for type bigint: "three thousand and one"/,
    );
    expect(byName['d-broken.jsonl']!.error_message).toMatch(/^line 2: invalid input syntax for type json/);
    const [r] = await h.sql.unsafe(
      `select count(*)::int as n, count(distinct id)::int as d, count(colour)::int as coloured,
              count(*) filter (where _source_file like '%/warm-0.jsonl')::int as rewritten
       from raw.${table}`,
    );
    // 60 warm rows with warm-0 grown from 10 to 12, 50 plain, 2 with the new field.
    expect(r).toEqual({ n: 114, d: 114, coloured: 1, rewritten: 12 });
  });
});

/**
 * Two attempts at one file, the file rewritten in between: the first attempt read version 1, the
 * "retry" reads version 2, and both reach the point of replacing the file's rows at once. Exactly
 * one version's rows may be in the table, and the ledger must name that version; the next run
 * brings the table to the store's version.
 */
describe('two attempts at one file with different ETags', () => {
  /** Backends waiting, directly or behind another waiter, on `holder`. */
  async function blockedBehind(holder: number): Promise<number> {
    const rows = await h.sql<{ pid: number; by: number[] }[]>`
      select pid, pg_blocking_pids(pid) as by from pg_stat_activity where wait_event_type = 'Lock'`;
    const blocked = new Set<number>();
    for (let grew = true; grew; ) {
      grew = false;
      for (const r of rows) {
        if (!blocked.has(r.pid) && r.by.some((p) => p === holder || blocked.has(p))) {
          blocked.add(r.pid);
          grew = true;
        }
      }
    }
    return blocked.size;
  }

  for (const size of ['small', 'large'] as const) {
    it(`${size} file: one version's rows, the ledger names it, the next run takes the newest`, async () => {
      const rows = size === 'small' ? 100 : 12_000;
      const v1 = jsonLines(1_000_000, rows);
      const v2 = jsonLines(2_000_000, rows);
      // Two warm files: the second finds the schema version the first committed, so later small
      // files of these columns take the one-statement path.
      const { id, bucket, table } = await h.createIngestion(
        { 'warm-1.jsonl': jsonLines(1, 10), 'warm-2.jsonl': jsonLines(11, 10) },
        {},
        `etag_${size}`,
      );
      expect(await h.runAndWait(id)).toMatchObject({ status: 'SUCCESS' });
      await h.putObject(bucket, 'f.jsonl', v1);

      const activities = createActivities(activityDepsFromConfig(loadConfig(), h.sql));
      const runId = `run_etags_${size}_${Date.now()}`;
      const env = () => new MockActivityEnvironment();
      await env().run(activities.startRun, {
        runId,
        ingestionId: id,
        trigger: 'test',
        workflowId: `test/${runId}`,
        scope: 'live',
      });
      await env().run(activities.discoverFiles, { runId, ingestionId: id, scope: 'live' });

      const holder = await h.sql.reserve();
      await holder`begin`;
      await holder.unsafe(`lock table raw.${table} in access exclusive mode`);
      const [{ pid }] = (await holder`select pg_backend_pid() as pid`) as unknown as [{ pid: number }];
      const waiting = (n: number) =>
        waitFor(`${n} attempts waiting`, async () => ((await blockedBehind(pid)) >= n ? true : undefined), {
          timeoutMs: 30_000,
          intervalMs: 20,
        });
      let committed = false;
      try {
        const batch = { runId, ingestionId: id, lane: 'lane-0', maxFiles: 10, maxBytes: 1024 ** 3 };
        const first = env().run(activities.processFiles, batch);
        await waiting(1);
        await h.putObject(bucket, 'f.jsonl', v2);
        const second = env().run(activities.processFiles, batch);
        // The second attempt reaches the file's rows too (both wait on the table), or, when the
        // first holds the file's row, finds nothing to claim and ends.
        let secondDone = false;
        second.then(
          () => (secondDone = true),
          () => (secondDone = true),
        );
        await waitFor(
          'the second attempt waiting or done',
          async () => (secondDone || (await blockedBehind(pid)) >= 2 ? true : undefined),
          { timeoutMs: 30_000, intervalMs: 20 },
        );
        await holder`commit`;
        committed = true;
        const results = (await Promise.all([first, second])) as { claimed: number; failed: number }[];
        expect(results.map((r) => r.failed)).toEqual([0, 0]);
        expect(results[0]!.claimed).toBe(1);
      } finally {
        if (!committed) await holder`rollback`;
        holder.release();
      }

      const versionOf = async () => {
        const [r] = await h.sql.unsafe(
          `select count(*)::int as n, min(id)::int as lo, max(id)::int as hi from raw.${table} where _source_file like '%/f.jsonl'`,
        );
        return r as unknown as { n: number; lo: number; hi: number };
      };
      const loaded = await versionOf();
      const v = loaded.lo >= 2_000_000 ? 2 : 1;
      expect(loaded).toEqual({ n: rows, lo: v * 1_000_000, hi: v * 1_000_000 + rows - 1 });
      const { ETag: etag2 } = await h.s3Client.send(
        new HeadObjectCommand({ Bucket: bucket, Key: 'f.jsonl' }),
      );
      const [file] = await h.sql<{ etag: string; records: number }[]>`
        select file_etag as etag, records_ingested::int as records from autoloader.processed_files
        where ingestion_id = ${id} and file_path like '%/f.jsonl'`;
      expect(file!.records).toBe(rows);
      if (v === 2) expect(file!.etag).toBe(etag2);
      else expect(file!.etag).not.toBe(etag2);

      // Whichever attempt won, the store's version is the one the table ends with.
      await env().run(activities.finishRun, { runId, ingestionId: id });
      await h.runAndWait(id);
      expect(await versionOf()).toEqual({ n: rows, lo: 2_000_000, hi: 2_000_000 + rows - 1 });
    });
  }
});
