import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities } from '../../src/activities/index.js';
import { waitFor } from '../../src/dev/service.js';
import { createStoreFactory } from '../../src/storage/index.js';
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

/** Locks the table until release(): loads into it wait at their DELETE. */
async function lockTable(table: string) {
  let release: () => void = () => undefined;
  const released = new Promise<void>((r) => {
    release = r;
  });
  let locked: () => void = () => undefined;
  const isLocked = new Promise<void>((r) => {
    locked = r;
  });
  const holder = h.sql.begin(async (tx) => {
    await tx.unsafe(`lock table raw.${table} in access exclusive mode`);
    locked();
    await released;
  });
  await isLocked;
  return async () => {
    release();
    await holder;
  };
}

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

    const activities = createActivities({
      sql: h.sql,
      stores: createStoreFactory({ localSourceRoots: [] }),
      fileMaxRetries: 3,
    });
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
    const release = await lockTable(table);
    const batch = { runId, ingestionId: id, lane: 'lane-0', maxFiles: 100, maxBytes: 1024 ** 3 };
    const first = env().run(activities.processFiles, batch);
    await waitingOn(table, 1);
    // The "retry": the same lane, so it finds the files the first attempt still holds.
    const second = env().run(activities.processFiles, batch);
    await waitingOn(table, 2);
    await release();
    const results = (await Promise.all([first, second])) as { claimed: number; failed: number }[];
    expect(results.map((r) => [r.claimed, r.failed])).toEqual([
      [22, 0],
      [22, 0],
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
