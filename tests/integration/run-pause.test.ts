import { defaultPayloadConverter } from '@temporalio/common';
import type { temporal } from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import { workflowMetadataQuery } from '@temporalio/workflow';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { inProcessClient } from '../../src/api/in-process.js';
import { createToken, ensureTenant } from '../../src/auth/tokens.js';
import { waitFor } from '../../src/dev/service.js';
import { searchAttributeKeys } from '../../src/temporal/search-attributes.js';
import { runProgressQuery } from '../../src/workflows/messages.js';
import { type Harness, jsonLines, jsonRecords, type RunBody, startHarness } from '../helpers/harness.js';

/**
 * Pause, resume and throttle of a running run, against the real worker. Each run is held mid-batch
 * by a lock on its destination while it is paused, so the batches in flight at the pause are known
 * exactly: every lane has claimed one batch, and a paused run must do those and nothing more.
 */
const lanes = 2;
const batchMaxFiles = 5;
let h: Harness;
beforeAll(async () => {
  h = await startHarness({ parallelism: lanes, batchMaxFiles });
});
afterAll(async () => {
  await h?.close();
});

interface ControlledRun extends RunBody {
  workflow_id: string;
  progress: { files_total: number; files_done: number } | null;
  control: { paused: boolean; max_parallel_files: number; batches_in_flight: number };
}

/** Row counts per file from a fixed seed (mulberry32), so every run of the test loads the same data. */
function seededCounts(n: number, seed: number): number[] {
  let a = seed;
  return Array.from({ length: n }, () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return 1 + (((t ^ (t >>> 14)) >>> 0) % 5);
  });
}

/**
 * Records whose every value has the same type in any file, however few rows it holds: each file
 * may be the first to load into the table and so pick the columns' types.
 */
const records = (first: number, count: number) =>
  jsonRecords(Array.from({ length: count }, (_, k) => ({ id: first + k, amount: first + k + 0.5 })));

/**
 * `fileCount` files in a new bucket and an ingestion over them into a table held locked, then a
 * run started: its lanes are certainly inside their first batch until the lock is released.
 */
async function lockedRun(fileCount: number, seed: number) {
  const table = `pause_${Math.random().toString(36).slice(2, 10)}`;
  const lock = await h.holdTableLock(table);
  const bucket = await h.createBucket();
  const counts = seededCounts(fileCount, seed);
  const starts = counts.map((_, i) => counts.slice(0, i).reduce((s, c) => s + c, 0));
  // Bounded parallel uploads: MinIO and this machine both have two cores.
  for (let i = 0; i < fileCount; i += 50) {
    await Promise.all(
      counts
        .slice(i, i + 50)
        .map((c, j) =>
          h.putObject(bucket, `part-${String(i + j).padStart(4, '0')}.jsonl`, records(starts[i + j]!, c)),
        ),
    );
  }
  const created = await h.api<{ id: string }>('POST', '/api/v1/ingestions', {
    name: table,
    connection_id: await h.createS3Connection(),
    source: { bucket, format: 'jsonl' },
    destination: `raw.${table}`,
  });
  expect(created.status).toBe(201);
  const started = await h.api<{ id: string; workflow_id: string }>(
    'POST',
    `/api/v1/ingestions/${created.body.id}/run`,
  );
  expect(started.status).toBe(202);
  const handle = h.client.workflow.getHandle(started.body.workflow_id);
  // Both lanes inside a batch, held by the lock: the pause below certainly finds them in flight.
  await waitFor(
    'every lane loading its first batch',
    async () => ((await handle.query(runProgressQuery)).batchesInFlight === lanes ? true : undefined),
    { timeoutMs: 60_000, intervalMs: 50 },
  );
  return {
    ingestionId: created.body.id,
    runId: started.body.id,
    table,
    handle,
    lock,
    rows: counts.reduce((s, c) => s + c, 0),
  };
}

const waitForStatus = (runId: string, status: string) =>
  waitFor(
    `run ${runId} ${status}`,
    async () => {
      const run = await h.api<ControlledRun>('GET', `/api/v1/runs/${runId}`);
      return run.body.status === status ? run.body : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 50 },
  );

/** Pause, resume and throttle of `runId` as another tenant sends them. */
async function asOtherTenant(runId: string) {
  const tenantId = `tenant_other_${Math.random().toString(36).slice(2, 8)}`;
  await ensureTenant(h.db, tenantId, 'other tenant');
  const { token } = await createToken(h.db, { tenantId, name: 'other', subject: 'eve@example.com' });
  const other = inProcessClient(h.app, token);
  return Promise.all([
    other('POST', `/api/v1/runs/${runId}/pause`),
    other('POST', `/api/v1/runs/${runId}/resume`),
    other('PATCH', `/api/v1/runs/${runId}`, { max_parallel_files: 2 }),
  ]);
}

/** The run's files in the ledger by status: DISCOVERED (queued), PROCESSING (claimed), SUCCESS… */
async function ledger(ingestionId: string): Promise<Record<string, number>> {
  const rows = await h.sql<{ status: string; n: number }[]>`
    select status, count(*)::int as n from autoloader.processed_files
    where ingestion_id = ${ingestionId} group by status`;
  return Object.fromEntries(rows.map((r) => [r.status, r.n]));
}

/**
 * The histories of the run's workflow, oldest first, across its continue-as-new chain: the history
 * limit of the test server (suggestContinueAsNewAt) cuts a run of this size several times.
 */
async function chainedHistories(workflowId: string): Promise<temporal.api.history.v1.IHistory[]> {
  const histories: temporal.api.history.v1.IHistory[] = [];
  let runId: string | undefined;
  for (;;) {
    const history = await h.client.workflow.getHandle(workflowId, runId).fetchHistory();
    histories.unshift(history);
    runId =
      history.events?.[0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId || undefined;
    if (!runId) return histories;
  }
}

/** The lanes of the processFiles batches the workflow scheduled, before and after its resume. */
function lanesScheduled(events: temporal.api.history.v1.IHistoryEvent[]) {
  const before = new Set<string>();
  const after = new Set<string>();
  let resumed = false;
  for (const e of events) {
    if (e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input?.name === 'resumeRun')
      resumed = true;
    const scheduled = e.activityTaskScheduledEventAttributes;
    if (scheduled?.activityType?.name !== 'processFiles') continue;
    const [arg] = (scheduled.input?.payloads ?? []).map((p) =>
      defaultPayloadConverter.fromPayload<{ lane: string }>(p),
    );
    (resumed ? after : before).add(arg!.lane.replace(/^.*\//, ''));
  }
  return { before: [...before].sort(), after: [...after].sort() };
}

describe('pause, resume and throttle a run', () => {
  it('pauses after the batches in flight, claims nothing while paused, throttles, resumes to SUCCESS', async () => {
    const run = await lockedRun(300, 11);

    const paused = await h.api<ControlledRun>('POST', `/api/v1/runs/${run.runId}/pause`);
    expect(paused.status).toBe(200);
    // The batches in flight are held by the lock and a pause lets them finish: not PAUSED yet.
    expect(paused.body).toMatchObject({
      status: 'RUNNING',
      control: { paused: true, max_parallel_files: lanes, batches_in_flight: lanes },
    });
    await run.lock.release();
    const settled = await waitForStatus(run.runId, 'PAUSED');

    // Each lane finished the one batch it held and claimed no other: exactly that many files done,
    // none claimed, the rest still queued; the workflow agrees and is still running.
    const doneAtPause = lanes * batchMaxFiles;
    expect(settled.progress).toMatchObject({ files_total: 300, files_done: doneAtPause });
    expect(await ledger(run.ingestionId)).toEqual({ SUCCESS: doneAtPause, DISCOVERED: 300 - doneAtPause });
    expect(await run.handle.query(runProgressQuery)).toMatchObject({
      phase: 'loading',
      paused: true,
      batchesInFlight: 0,
      filesDone: doneAtPause,
    });
    const described = await run.handle.describe();
    expect(described.status.name).toBe('RUNNING');
    expect(described.typedSearchAttributes.get(searchAttributeKeys.runState)).toBe('paused');
    expect((await run.handle.query(workflowMetadataQuery)).currentDetails).toContain('**Paused**');
    // Another tenant cannot resume (or even see) it.
    for (const res of await asOtherTenant(run.runId))
      expect(res.body).toMatchObject({ error_code: 'RUN_NOT_FOUND' });

    // Throttled down, then up, while paused: each answered by the workflow, and still nothing claimed.
    const down = await h.api<ControlledRun>('PATCH', `/api/v1/runs/${run.runId}`, { max_parallel_files: 1 });
    expect(down.status).toBe(200);
    expect(down.body.control).toEqual({ paused: true, max_parallel_files: 1, batches_in_flight: 0 });
    const up = await h.api<ControlledRun>('PATCH', `/api/v1/runs/${run.runId}`, { max_parallel_files: 3 });
    expect(up.status).toBe(200);
    expect(up.body).toMatchObject({
      status: 'PAUSED',
      control: { paused: true, max_parallel_files: 3, batches_in_flight: 0 },
    });
    // A query is answered after the updates before it: the new lanes have started, and wait.
    expect(await run.handle.query(runProgressQuery)).toMatchObject({
      paused: true,
      maxParallelFiles: 3,
      batchesInFlight: 0,
      filesDone: doneAtPause,
    });
    expect(await ledger(run.ingestionId)).toEqual({ SUCCESS: doneAtPause, DISCOVERED: 300 - doneAtPause });

    const resumed = await h.api<ControlledRun>('POST', `/api/v1/runs/${run.runId}/resume`);
    expect(resumed.status).toBe(200);
    expect(resumed.body.control).toMatchObject({ paused: false, max_parallel_files: 3 });
    await h.waitForIngestionIdle(run.ingestionId);

    const finished = await h.api<ControlledRun>('GET', `/api/v1/runs/${run.runId}`);
    expect(finished.body).toMatchObject({
      status: 'SUCCESS',
      files_discovered: 300,
      files_processed: 300,
      files_failed: 0,
      records_written: run.rows,
    });
    const [c] = await h.sql.unsafe(
      `select count(*)::int as n, count(distinct id)::int as d from raw.${run.table}`,
    );
    expect(c).toEqual({ n: run.rows, d: run.rows });
    // Two lanes before the pause; the three of the throttle after the resume, and never a fourth.
    const histories = await chainedHistories(run.handle.workflowId);
    expect(lanesScheduled(histories.flatMap((x) => x.events ?? []))).toEqual({
      before: ['lane-0', 'lane-1'],
      after: ['lane-0', 'lane-1', 'lane-2'],
    });
    // The paused, throttled and resumed executions replay against this code (a worker restart mid-pause).
    const bundle = { workflowBundle: { codePath: inject('workflowBundlePath') } };
    for (const [i, history] of histories.entries())
      await Worker.runReplayHistory(bundle, history, `${run.handle.workflowId}#${i}`);
    const finalAttrs = (await run.handle.describe()).typedSearchAttributes;
    expect(finalAttrs.get(searchAttributeKeys.runState)).toBe('running');
  });

  it('cancels a paused run: CANCELLED, with only the files done before the pause', async () => {
    const run = await lockedRun(30, 12);
    expect((await h.api('POST', `/api/v1/runs/${run.runId}/pause`)).status).toBe(200);
    await run.lock.release();
    await waitForStatus(run.runId, 'PAUSED');

    const cancelled = await h.api<RunBody>('POST', `/api/v1/runs/${run.runId}/cancel`);
    expect(cancelled.status).toBe(200);
    await h.waitForIngestionIdle(run.ingestionId);
    const after = await h.api<RunBody>('GET', `/api/v1/runs/${run.runId}`);
    expect(after.body).toMatchObject({
      status: 'CANCELLED',
      files_processed: lanes * batchMaxFiles,
      files_failed: 0,
    });
    expect((await run.handle.describe()).status.name).toBe('CANCELLED');
  });

  it('refuses another tenant (404 as for a missing run), a finished run or refresh run (409) and a bad lane count (400)', async () => {
    const { id } = await h.createIngestion({ 'one.jsonl': jsonLines(0, 3) }, {}, 'pz');
    const done = await h.runAndWait(id);
    expect(done.status).toBe('SUCCESS');

    for (const [method, path, body] of [
      ['POST', `/api/v1/runs/${done.id}/pause`, undefined],
      ['POST', `/api/v1/runs/${done.id}/resume`, undefined],
      ['PATCH', `/api/v1/runs/${done.id}`, { max_parallel_files: 2 }],
    ] as const) {
      const res = await h.api(method, path, body);
      expect(res.status, `${method} ${path}`).toBe(409);
      expect(res.body).toMatchObject({ error_code: 'RUN_NOT_RUNNING', status: 'SUCCESS' });
    }

    // A refresh's run is its own child workflow: found by the same routes, refused once it is done.
    const refresh = await h.api<{ run_id: string }>('POST', `/api/v1/ingestions/${id}/full-refresh`, {
      confirm: true,
      strategy: 'swap',
      grace_period_seconds: 0,
    });
    expect(refresh.status).toBe(202);
    await h.waitForIngestionIdle(id);
    const refreshRun = await h.api<ControlledRun>('GET', `/api/v1/runs/${refresh.body.run_id}`);
    expect(refreshRun.body).toMatchObject({
      status: 'SUCCESS',
      workflow_id: `ingestion/${id}/run/${refresh.body.run_id}`,
    });
    expect((await h.api('POST', `/api/v1/runs/${refresh.body.run_id}/pause`)).body).toMatchObject({
      error_code: 'RUN_NOT_RUNNING',
      status: 'SUCCESS',
    });

    for (const bad of [0, -1, 1.5, 10_000, '2', null]) {
      const res = await h.api('PATCH', `/api/v1/runs/${done.id}`, { max_parallel_files: bad });
      expect(res.status, JSON.stringify(bad)).toBe(400);
      expect(res.body).toMatchObject({ error_code: 'VALIDATION_ERROR', field: 'max_parallel_files' });
    }
    const extra = await h.api('PATCH', `/api/v1/runs/${done.id}`, { max_parallel_files: 2, paused: true });
    expect(extra.body).toMatchObject({ error_code: 'VALIDATION_ERROR', field: 'paused' });

    // A finished run of another tenant: 404 like a missing run, not the 409 that would tell it exists.
    const missing = await h.api('POST', '/api/v1/runs/run_doesnotexist/pause');
    expect(missing.status).toBe(404);
    for (const res of await asOtherTenant(done.id)) {
      expect(res.status).toBe(404);
      expect(res.body).toEqual(missing.body);
    }
  });
});
