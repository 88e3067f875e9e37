/**
 * "Exactly once, proved by killing things": a run over a few hundred files is interrupted half way —
 * its worker SIGKILLed, its Temporal server restarted, its Postgres restarted — and must still finish
 * by itself with every file SUCCESS and every record in the destination exactly once.
 *
 * Each test gets its own Temporal dev server and Postgres (tests/helpers/isolated-stack.ts), since
 * restarting the suite's shared ones would break the test files running next to this one. MinIO is
 * the shared one and is never restarted. Workers run in child processes (worker-process.ts) so that
 * a kill is a real kill.
 */
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { WorkflowHandle } from '@temporalio/client';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import type { RunSummary } from '../../src/activities/finish-run.js';
import type { Sql } from '../../src/db/client.js';
import { waitFor } from '../../src/dev/service.js';
import { workflowIds } from '../../src/temporal/ids.js';
import type { ingestionRunWorkflow } from '../../src/workflows/ingestion-run.js';
import { jsonLines, minioConnectionConfig, storeMinioCredentials } from '../helpers/harness.js';
import {
  connectApp,
  type IsolatedStack,
  type StackApp,
  startIsolatedStack,
} from '../helpers/isolated-stack.js';
import type { WorkerProcess } from '../helpers/spawn-worker.js';

/** Enough work that a run takes several seconds, so there is a "half way" to interrupt. */
const FILES = 400;
const ROWS_PER_FILE = 2_000;
const TOTAL_RECORDS = FILES * ROWS_PER_FILE;
/** Interrupt once this many files are loaded: well past the start, far from the end. */
const INTERRUPT_AFTER = Math.round(FILES * 0.15);
/** Claimed-but-unfinished files required at the moment of the interruption (see waitUntilMidBatch). */
const MIN_IN_FLIGHT = 3;
/**
 * Small batches: a lane asks Temporal for work often, so an outage of Temporal or Postgres lands
 * between and inside activities rather than inside one activity that happens to outlive it.
 */
const RUN_DEFAULTS = { parallelism: 2, batchMaxFiles: 10, batchMaxBytes: 64 * 1024 * 1024 };
/** Heartbeat timeout (30 s) + retry + the rest of the load, on a 2-core machine shared with other files. */
const SCENARIO_TIMEOUT_MS = 150_000;

const s3 = inject('s3');
const s3Client = new S3Client({
  endpoint: s3.endpoint,
  region: s3.region,
  forcePathStyle: true,
  credentials: { accessKeyId: s3.accessKey, secretAccessKey: s3.secretKey },
});
// Connections name the env vars that hold credentials; the API and the worker processes read them.
const s3Env = { TEST_S3_ACCESS_KEY: s3.accessKey, TEST_S3_SECRET_KEY: s3.secretKey };
Object.assign(process.env, s3Env);

/** One read-only bucket for the whole file: each scenario loads it into its own Postgres. */
let bucket: string;

beforeAll(async () => {
  bucket = `crash-${randomUUID().slice(0, 18)}`;
  await s3Client.send(new CreateBucketCommand({ Bucket: bucket }));
  // Bounded parallel uploads: MinIO shares the two cores with everything else.
  for (let i = 0; i < FILES; i += 20) {
    const batch = Array.from({ length: Math.min(20, FILES - i) }, (_, j) => i + j);
    await Promise.all(
      batch.map((n) =>
        s3Client.send(
          new PutObjectCommand({
            Bucket: bucket,
            Key: `events/part-${String(n).padStart(5, '0')}.jsonl`,
            Body: jsonLines(n * ROWS_PER_FILE, ROWS_PER_FILE),
          }),
        ),
      ),
    );
  }
});

afterAll(() => {
  s3Client.destroy();
});

/** Teardown of whatever the current test started, newest first, whether it passed or not. */
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  const errors: unknown[] = [];
  for (const cleanup of cleanups.splice(0).reverse()) {
    await cleanup().catch((err: unknown) => errors.push(err));
  }
  if (errors.length > 0) throw new AggregateError(errors, 'crash-recovery teardown failed');
});

interface Scenario {
  stack: IsolatedStack;
  app: StackApp;
  taskQueue: string;
  worker: WorkerProcess;
  ingestionId: string;
  table: string;
  runId: string;
  handle: WorkflowHandle<typeof ingestionRunWorkflow>;
  /** Cancels the test's pending Temporal calls before teardown closes their connection. */
  abortCalls: AbortController;
}

/** An isolated stack, a worker process, an ingestion over the bucket, and a run started through the API. */
async function startScenario(name: string): Promise<Scenario> {
  const stack = await startIsolatedStack(name);
  cleanups.push(() => stack.close());
  const taskQueue = `crash-${randomUUID()}`;
  const app = await connectApp(stack, { taskQueue, runDefaults: RUN_DEFAULTS });
  cleanups.push(() => app.close());
  // A result() still waiting when the test fails would be retried by the client's gRPC interceptor
  // on a closed channel, which throws from a timer: cancel it first (cleanups run newest first).
  const abortCalls = new AbortController();
  cleanups.push(async () => abortCalls.abort());
  const worker = await spawnWorker(stack, taskQueue);

  await storeMinioCredentials(app.api, s3);
  const connection = await app.api<{ id: string }>('POST', '/api/v1/connections', {
    name: 'minio',
    kind: 's3',
    config: minioConnectionConfig(s3),
  });
  expect(connection.status).toBe(201);
  const table = `crash_${name.replace(/\W/g, '_')}`;
  const ingestion = await app.api<{ id: string }>('POST', '/api/v1/ingestions', {
    name: table,
    connection_id: connection.body.id,
    source: { bucket, prefix: 'events/', pattern: '*.jsonl', format: 'jsonl' },
    destination: `raw.${table}`,
  });
  expect(ingestion.status).toBe(201);
  const ingestionId = ingestion.body.id;

  const started = await app.api<{ id: string }>('POST', `/api/v1/ingestions/${ingestionId}/run`);
  expect(started.status).toBe(202);
  const handle = app.client.workflow.getHandle<typeof ingestionRunWorkflow>(
    workflowIds.ingestion(ingestionId),
  );
  return { stack, app, taskQueue, worker, ingestionId, table, runId: started.body.id, handle, abortCalls };
}

function spawnWorker(stack: IsolatedStack, taskQueue: string): Promise<WorkerProcess> {
  return stack.spawnWorker({ taskQueue, workflowBundlePath: inject('workflowBundlePath'), env: s3Env });
}

interface FileCounts {
  /** Files committed SUCCESS. */
  loaded: number;
  /** Files a lane has claimed and not yet finished: an activity is in the middle of its batch. */
  inFlight: number;
}

async function fileCounts(sql: Sql, ingestionId: string): Promise<FileCounts> {
  const [row] = await sql<FileCounts[]>`
    select count(*) filter (where status = 'SUCCESS')::int as loaded,
           count(*) filter (where status = 'PROCESSING')::int as "inFlight"
    from autoloader.processed_files where ingestion_id = ${ingestionId}`;
  return row ?? { loaded: 0, inFlight: 0 };
}

/**
 * Polls Postgres (bounded) until the run is well under way AND a lane is in the middle of a batch
 * with several files still to go, so that the interruption lands inside a processFiles activity
 * (not in the gap between two of them, where it would prove much less). Several files to go means
 * the activity cannot finish its batch in the few milliseconds between this poll and the blow.
 */
async function waitUntilMidBatch(s: Scenario): Promise<FileCounts> {
  return waitFor(
    `${INTERRUPT_AFTER} of ${FILES} files loaded and a batch in flight`,
    async () => {
      const counts = await fileCounts(s.app.sql, s.ingestionId);
      return counts.loaded >= INTERRUPT_AFTER && counts.inFlight >= MIN_IN_FLIGHT ? counts : undefined;
    },
    { timeoutMs: 90_000, intervalMs: 20 },
  );
}

/**
 * The run's outcome, on Temporal's word; fails at once (with the worker's output) if the worker
 * that should finish it dies on its own, rather than when the test times out.
 */
async function runResult(s: Scenario, worker: WorkerProcess): Promise<RunSummary> {
  try {
    return await Promise.race([
      s.app.client.withAbortSignal(s.abortCalls.signal, () => s.handle.result()),
      worker.died,
    ]);
  } finally {
    // Settled either way; if the worker died, stop the long poll now rather than at teardown.
    s.abortCalls.abort();
  }
}

/** The highest attempt any processFiles activity needed: > 1 proves Temporal retried one. */
async function maxProcessFilesAttempt(s: Scenario): Promise<number> {
  const history = await s.handle.fetchHistory();
  let max = 0;
  const scheduled = new Map<string, string>();
  for (const event of history.events ?? []) {
    const sched = event.activityTaskScheduledEventAttributes;
    if (sched) scheduled.set(String(event.eventId), sched.activityType?.name ?? '');
    const start = event.activityTaskStartedEventAttributes;
    if (start && scheduled.get(String(start.scheduledEventId)) === 'processFiles') {
      max = Math.max(max, start.attempt ?? 0);
    }
  }
  return max;
}

/** Every file SUCCESS, the run SUCCESS, and every record in the destination exactly once. */
async function expectExactlyOnce(s: Scenario, summary: RunSummary): Promise<void> {
  expect(summary).toMatchObject({
    runId: s.runId,
    status: 'SUCCESS',
    filesDiscovered: FILES,
    filesProcessed: FILES,
    filesFailed: 0,
    recordsWritten: TOTAL_RECORDS,
  });
  const files = await s.app.sql<{ status: string; n: number }[]>`
    select status, count(*)::int as n from autoloader.processed_files
    where ingestion_id = ${s.ingestionId} group by status`;
  expect(files).toEqual([{ status: 'SUCCESS', n: FILES }]);
  const [run] = await s.app.sql<
    { status: string }[]
  >`select status from autoloader.runs where id = ${s.runId}`;
  expect(run?.status).toBe('SUCCESS');

  const [rows] = await s.app.sql.unsafe<{ n: number; d: number; files: number; run_ids: number }[]>(
    `select count(*)::int as n, count(distinct id)::int as d,
            count(distinct _source_file)::int as files, count(distinct _run_id)::int as run_ids
     from raw.${s.table}`,
  );
  expect(rows).toEqual({ n: TOTAL_RECORDS, d: TOTAL_RECORDS, files: FILES, run_ids: 1 });
  const [ids] = await s.app.sql.unsafe<{ lo: number; hi: number }[]>(
    `select min(id)::int as lo, max(id)::int as hi from raw.${s.table}`,
  );
  // Distinct and complete: the ids are exactly 0 .. TOTAL-1, none lost and none invented.
  expect(ids).toEqual({ lo: 0, hi: TOTAL_RECORDS - 1 });
}

describe.sequential('a run interrupted half way finishes by itself, exactly once', () => {
  it(
    'survives its worker being SIGKILLed: a new worker on the task queue takes over',
    async () => {
      const s = await startScenario('worker_kill');
      await waitUntilMidBatch(s);
      await s.worker.kill();
      // The dead worker can change nothing any more: this is what it left behind. The kill landed
      // mid-run and mid-batch, otherwise this test proves nothing.
      const left = await fileCounts(s.app.sql, s.ingestionId);
      expect(left.loaded).toBeLessThan(FILES);
      expect(left.inFlight).toBeGreaterThan(0);

      // What a worker killed in the middle of a direct load leaves in the temp dir (its spill of
      // the file's lines), beside one of a live process: the next worker's start removes the first.
      const killedScratch = join(tmpdir(), `autoloader-direct-${s.worker.pid}-killed`);
      const liveScratch = join(tmpdir(), `autoloader-direct-${process.pid}-living`);
      for (const dir of [killedScratch, liveScratch]) {
        await mkdir(dir);
        await writeFile(join(dir, 'lines'), jsonLines(0, 100));
      }

      // The dead worker's activities are noticed by their heartbeat timeout and retried here.
      const replacement = await spawnWorker(s.stack, s.taskQueue);
      try {
        expect(existsSync(killedScratch)).toBe(false);
        expect(existsSync(join(liveScratch, 'lines'))).toBe(true);
      } finally {
        await rm(liveScratch, { recursive: true, force: true });
      }
      const summary = await runResult(s, replacement);
      await expectExactlyOnce(s, summary);
      expect(await maxProcessFilesAttempt(s)).toBeGreaterThan(1);
    },
    SCENARIO_TIMEOUT_MS,
  );

  it(
    'survives a Temporal server restart: history kept, the worker reconnects by itself',
    async () => {
      const s = await startScenario('temporal_restart');
      await waitUntilMidBatch(s);
      await s.stack.stopTemporal();
      // The worker keeps loading its current batches while Temporal is away, but cannot get more.
      const whileDown = await fileCounts(s.app.sql, s.ingestionId);
      expect(whileDown.loaded).toBeLessThan(FILES);
      await s.stack.startTemporal();

      const summary = await runResult(s, s.worker);
      await expectExactlyOnce(s, summary);
    },
    SCENARIO_TIMEOUT_MS,
  );

  it(
    'survives a Postgres restart: activities failing on the lost connections are retried',
    async () => {
      const s = await startScenario('postgres_restart');
      // Mid-batch: the lane's activity still has files to load, so the outage fails it.
      const beforeStop = await waitUntilMidBatch(s);
      await s.stack.stopPostgres();
      expect(beforeStop.loaded).toBeLessThan(FILES);
      await s.stack.startPostgres();

      const summary = await runResult(s, s.worker);
      await expectExactlyOnce(s, summary);
      expect(await maxProcessFilesAttempt(s)).toBeGreaterThan(1);
    },
    SCENARIO_TIMEOUT_MS,
  );
});
