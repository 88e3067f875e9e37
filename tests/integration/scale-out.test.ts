import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { inProcessClient } from '../../src/api/in-process.js';
import { workflowIds } from '../../src/temporal/ids.js';
import { type Harness, jsonLines, type RunBody, startHarness } from '../helpers/harness.js';
import { spawnWorkerProcess, type WorkerProcess } from '../helpers/spawn-worker.js';

/**
 * Workers scale out by starting more of them on one task queue: two `npm run worker` processes
 * share a run's files, and each file is loaded once.
 */
let h: Harness;
const workers: WorkerProcess[] = [];
const taskQueue = `scale-out-${randomUUID()}`;

beforeAll(async () => {
  h = await startHarness();
  const common = {
    databaseUrl: inject('databaseUrl'),
    temporalAddress: inject('temporalAddress'),
    taskQueue,
    workflowBundlePath: inject('workflowBundlePath'),
    env: {
      TEST_S3_ACCESS_KEY: process.env.TEST_S3_ACCESS_KEY!,
      TEST_S3_SECRET_KEY: process.env.TEST_S3_SECRET_KEY!,
    },
  };
  workers.push(...(await Promise.all([spawnWorkerProcess(common), spawnWorkerProcess(common)])));
});
afterAll(async () => {
  await Promise.allSettled(workers.map((w) => w.stop()));
  await h?.close();
});

describe('two worker processes on one task queue', () => {
  it('both load files of one run, and every file is loaded once', async () => {
    const files = Object.fromEntries(
      Array.from({ length: 60 }, (_, i) => [`f${i}.jsonl`, jsonLines(i * 100, 100)]),
    );
    const { id, table } = await h.createIngestion(files, {}, 'scale');
    // Small batches in four lanes: many activities for the two workers to share.
    const app = h.makeApp({ taskQueue, runDefaults: { parallelism: 4, batchMaxFiles: 2 } });
    const api = inProcessClient(app, h.token);
    const started = await api<{ id: string }>('POST', `/api/v1/ingestions/${id}/run`);
    expect(started.status).toBe(202);
    await Promise.race([
      h.client.workflow.getHandle(workflowIds.ingestion(id)).result(),
      ...workers.map((w) => w.died),
    ]);

    const run = await api<RunBody>('GET', `/api/v1/runs/${started.body.id}`);
    expect(run.body).toMatchObject({ status: 'SUCCESS', files_processed: 60, records_written: 6000 });
    const [rows] = await h.sql.unsafe(
      `select count(*)::int as n, count(distinct id)::int as d from raw.${table}`,
    );
    expect(rows).toEqual({ n: 6000, d: 6000 });

    // Who ran each batch, from Temporal's own record: the workers' identities (pid@host).
    const history = await h.client.workflow.getHandle(workflowIds.ingestion(id)).fetchHistory();
    const identities = new Set(
      (history.events ?? [])
        .map((e) => e.activityTaskStartedEventAttributes?.identity)
        .filter((x): x is string => Boolean(x)),
    );
    expect(identities.size).toBe(2);
    expect([...identities].map((i) => Number(i.split('@')[0])).sort()).toEqual(
      workers.map((w) => w.pid).sort(),
    );
  });
});
