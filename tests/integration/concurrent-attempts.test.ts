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
