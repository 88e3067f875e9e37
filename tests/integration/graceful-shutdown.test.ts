/**
 * A worker told to stop (SIGTERM: a deploy, a scale-down) hands its work back at once: the load it
 * is in the middle of rolls back, and its lane fails retryably, so Temporal gives it to another
 * worker straight away — not after the heartbeat timeout, as it must for a worker that died. The
 * evidence is the workflow history: the interrupted attempt ends as a WorkerShutdown failure, and
 * no attempt of the run times out.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { waitFor } from '../../src/dev/service.js';
import { workflowIds } from '../../src/temporal/ids.js';
import { type Harness, jsonLines, type RunBody, startHarness } from '../helpers/harness.js';
import { spawnWorkerProcess, type WorkerProcess } from '../helpers/spawn-worker.js';

let h: Harness;
const workers: WorkerProcess[] = [];
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  for (const w of workers) await w.kill();
  await h?.close();
});

const spawn = async (taskQueue: string) => {
  const w = await spawnWorkerProcess({
    databaseUrl: h.databaseUrl,
    temporalAddress: inject('temporalAddress'),
    taskQueue,
    workflowBundlePath: inject('workflowBundlePath'),
  });
  workers.push(w);
  return w;
};

describe('a worker stopped with SIGTERM', () => {
  it('hands its lane to another worker at once; every file loads once', async () => {
    // Workflows of this app go to a task queue that only the child workers poll.
    const taskQueue = `graceful-${randomUUID()}`;
    const app = h.makeApp({ taskQueue, runDefaults: { parallelism: 1, batchMaxFiles: 100 } });
    const files: Record<string, string> = {};
    for (let i = 0; i < 6; i++) files[`part-${i}.jsonl`] = jsonLines(i * 1_000, 1_000);
    const { id, table } = await h.createIngestion(files, {}, 'graceful');
    // The destination exists and is locked: the run's first load waits on it, certainly in flight.
    const lock = await h.holdTableLock(table);

    const first = await spawn(taskQueue);
    const started = await app.request(`/api/v1/ingestions/${id}/run`, {
      method: 'POST',
      headers: { authorization: `Bearer ${h.token}` },
    });
    expect(started.status).toBe(202);
    const runId = ((await started.json()) as { id: string }).id;
    await waitFor(
      'a load waiting on the locked table',
      async () => {
        const [r] = await h.sql<{ n: number }[]>`
          select count(*)::int as n from pg_locks where relation = ${`raw.${table}`}::regclass and not granted`;
        return r!.n >= 1 ? true : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 50 },
    );

    const second = await spawn(taskQueue);
    await first.stop(30_000);
    await lock.release();
    const handle = h.client.workflow.getHandle(workflowIds.ingestion(id));
    await Promise.race([handle.result(), second.died]);

    const run = await h.api<RunBody>('GET', `/api/v1/runs/${runId}`);
    expect(run.body).toMatchObject({ status: 'SUCCESS', files_processed: 6, records_written: 6_000 });
    const [rows] = await h.sql.unsafe(
      `select count(*)::int as n, count(distinct id)::int as d from raw.${table}`,
    );
    expect(rows).toEqual({ n: 6_000, d: 6_000 });

    // Retried attempts leave no failure event: the attempt that ran last records how many there
    // were and how the one before it ended.
    const history = await handle.fetchHistory();
    const retried = (history.events ?? [])
      .map((e) => e.activityTaskStartedEventAttributes)
      .filter((a) => a && (a.attempt ?? 1) > 1);
    expect(retried).toHaveLength(1);
    const last = retried[0]!.lastFailure;
    expect(last?.applicationFailureInfo?.type).toBe('WorkerShutdown');
    expect(last?.timeoutFailureInfo).toBeFalsy();
  });
});
