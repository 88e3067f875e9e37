/**
 * The fault-injection loop (issue 10, section 2): exactly once holds under many faults in one load,
 * not just one fault per scenario. A few hundred mixed files — JSON lines, CSV, gzipped ones of both,
 * Parquet, and malformed files of each kind — are loaded by one run per format (an ingestion has one
 * format), all three running at once on one isolated stack. While they run, a schedule drawn from a
 * seeded PRNG (tests/helpers/fault-plan.ts) SIGKILLs the worker and starts a new one, restarts the
 * Temporal dev server, and restarts Postgres, each at a point of progress ("once N files are done").
 * Then:
 * - every good file is SUCCESS with its row count, every bad file FAILED with its error recorded as
 *   permanent (a data error);
 * - each table holds each good file's rows exactly once: count(*) = count(distinct id) = the good
 *   files' rows, ids being unique across every file of every table;
 * - each run ends PARTIAL_SUCCESS (some files are bad), and the ingestion is free: a second run is
 *   accepted and ends SUCCESS with nothing to do.
 *
 * Replay: the seed, the fault count and the schedule are printed first; FAULT_SEED and FAULT_COUNT
 * set them (defaults: the CI schedule).
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, inject, it, onTestFailed } from 'vitest';
import type { RunSummary } from '../../src/activities/finish-run.js';
import { waitFor } from '../../src/dev/service.js';
import type { FileFormat } from '../../src/domain/schemas.js';
import { workflowIds } from '../../src/temporal/ids.js';
import type { ingestionRunWorkflow } from '../../src/workflows/ingestion-run.js';
import {
  describePlan,
  type FaultKind,
  faultSettingsFromEnv,
  type PlannedFault,
  planFaults,
} from '../helpers/fault-plan.js';
import { csvRows, jsonLines, minioConnectionConfig, storeMinioCredentials } from '../helpers/harness.js';
import {
  connectApp,
  type IsolatedStack,
  type StackApp,
  startIsolatedStack,
} from '../helpers/isolated-stack.js';
import type { WorkerProcess } from '../helpers/spawn-worker.js';

/**
 * Small batches: a lane goes back to Temporal for work often, so outages land between activities
 * as well as inside them; and a lane finishes at most its batch while Temporal is away, so a
 * Temporal restart cannot let the runs race past the rest of the schedule. Three runs of two lanes
 * stay under the worker's eight activity slots.
 */
const RUN_DEFAULTS = { parallelism: 2, batchMaxFiles: 3, batchMaxBytes: 64 * 1024 * 1024 };
/**
 * Faults are planned between 5 % and 75 % of the files done: after the runs have started, and with a
 * quarter of the work left for the faults that fire late (a fault's recovery lets files finish).
 */
const FAULT_WINDOW = { from: 0.05, to: 0.75 };
/**
 * The contract's bound for the fault loop in CI is 5 minutes: setup (fixtures, the stack, a worker)
 * gets one of them, the loop and its checks the other four.
 */
const SETUP_TIMEOUT_MS = 60_000;
const LOOP_TIMEOUT_MS = 240_000;
/** One fault's moment must come within this; a kill costs the 10 s heartbeat timeout plus a worker start. */
const FAULT_MOMENT_TIMEOUT_MS = 120_000;
/** Ids of rows in malformed files: far from every good id, so a leaked row would show in the counts. */
const BAD_FILE_ID_BASE = 1_000_000_000;

const settings = faultSettingsFromEnv(process.env);
/** More faults than the CI schedule's (set by hand) get proportionally more files to land in. */
const fileScale = Math.max(1, Math.ceil(settings.count / 12));

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

interface FixtureFile {
  key: string;
  body: string | Buffer;
  /** Rows the file holds; absent for a malformed file, which must fail as a whole. */
  rows?: number;
}

/** The files of one format, loaded by one ingestion from `<format>/`. */
interface Family {
  format: FileFormat;
  files: FixtureFile[];
}

/** Every good row of every file gets the next id: unique across files, formats and tables. */
function idAllocator() {
  let next = 0;
  return (rows: number) => {
    const first = next;
    next += rows;
    return first;
  };
}

const pad = (n: number) => String(n).padStart(5, '0');
/** Small files of varied sizes (50-399 rows): most loads are short, and they do not end in step. */
const smallRows = (i: number) => 50 + ((i * 7919) % 350);
/** Files large enough (> 1 MiB of JSON lines) for the streamed path, where a fault lands mid-COPY. */
const LARGE_ROWS = 20_000;

/** `text` with `line` inserted after its `after`-th line. */
function withLine(text: string, after: number, line: string): string {
  const lines = text.trimEnd().split('\n');
  lines.splice(after, 0, line);
  return `${lines.join('\n')}\n`;
}

/** The first half of a gzip stream: "unexpected end of file" while reading it. */
const truncatedGzip = (text: string) => {
  const gz = gzipSync(text);
  return gz.subarray(0, Math.floor(gz.length / 2));
};

function jsonLinesFamily(nextId: (rows: number) => number): Family {
  const files: FixtureFile[] = [];
  for (let i = 0; i < 150 * fileScale; i++) {
    const rows = i === 30 || i === 90 ? LARGE_ROWS : smallRows(i);
    const text = jsonLines(nextId(rows), rows);
    const gz = i % 4 === 3;
    files.push({
      key: `jsonl/part-${pad(i)}.jsonl${gz ? '.gz' : ''}`,
      body: gz ? gzipSync(text) : text,
      rows,
    });
  }
  const broken = withLine(jsonLines(BAD_FILE_ID_BASE, 40), 20, '{"id": 1, "user": "cut off');
  files.push(
    { key: 'jsonl/part-00020-bad-broken-line.jsonl', body: broken },
    { key: 'jsonl/part-00070-bad-broken-line.jsonl.gz', body: gzipSync(broken) },
    {
      key: 'jsonl/part-00120-bad-truncated.jsonl.gz',
      body: truncatedGzip(jsonLines(BAD_FILE_ID_BASE, 5_000)),
    },
  );
  return { format: 'jsonl', files };
}

function csvFamily(nextId: (rows: number) => number): Family {
  const files: FixtureFile[] = [];
  for (let i = 0; i < 130 * fileScale; i++) {
    const rows = i === 65 ? LARGE_ROWS : smallRows(i);
    const text = csvRows(nextId(rows), rows);
    const gz = i % 4 === 1;
    files.push({ key: `csv/part-${pad(i)}.csv${gz ? '.gz' : ''}`, body: gz ? gzipSync(text) : text, rows });
  }
  const ragged = withLine(
    csvRows(BAD_FILE_ID_BASE, 40),
    21,
    `${BAD_FILE_ID_BASE + 99},user_x,1.25,2025-01-01T00:00:00.000Z,one field too many`,
  );
  files.push(
    { key: 'csv/part-00030-bad-ragged.csv', body: ragged },
    { key: 'csv/part-00080-bad-ragged.csv.gz', body: gzipSync(ragged) },
    { key: 'csv/part-00110-bad-truncated.csv.gz', body: truncatedGzip(csvRows(BAD_FILE_ID_BASE, 10_000)) },
  );
  return { format: 'csv', files };
}

/** Parquet written by DuckDB (the fixture maker, not the code under test), the same columns as the others. */
async function parquetFamily(nextId: (rows: number) => number): Promise<Family> {
  const dir = await mkdtemp(join(tmpdir(), 'fault-loop-parquet-'));
  const db = await DuckDBInstance.create(':memory:');
  const conn = await db.connect();
  const write = async (name: string, first: number, rows: number): Promise<Buffer> => {
    const file = join(dir, name);
    await conn.run(`COPY (
        SELECT i AS id, 'user_' || (i % 97) AS "user", round(i * 1.25, 2) AS amount,
               TIMESTAMPTZ '2025-01-01 00:00:00+00' + INTERVAL (i % 60) SECOND AS ts
        FROM range(${first}, ${first + rows}) t(i)
      ) TO '${file}' (FORMAT parquet)`);
    return readFile(file);
  };
  try {
    const files: FixtureFile[] = [];
    for (let i = 0; i < 60 * fileScale; i++) {
      const rows = smallRows(i);
      files.push({
        key: `parquet/part-${pad(i)}.parquet`,
        body: await write(`${i}.parquet`, nextId(rows), rows),
        rows,
      });
    }
    const whole = await write('bad.parquet', BAD_FILE_ID_BASE, 100);
    files.push(
      { key: 'parquet/part-00015-bad-truncated.parquet', body: whole.subarray(0, whole.length - 20) },
      { key: 'parquet/part-00045-bad-not-parquet.parquet', body: 'id,user\n1,not parquet at all\n' },
    );
    return { format: 'parquet', files };
  } finally {
    conn.closeSync();
    await rm(dir, { recursive: true, force: true });
  }
}

interface LoopIngestion {
  family: Family;
  id: string;
  table: string;
  /** Rows per good file, by key. */
  goodRows: Record<string, number>;
  badKeys: string[];
}

let bucket: string;
let families: Family[];
let stack: IsolatedStack;
let app: StackApp;
let taskQueue: string;
/** The worker now polling; replaced by every kill-worker fault. */
let worker: WorkerProcess;
let ingestions: LoopIngestion[];
/** Cancels pending Temporal calls before teardown closes their connection. */
const abortCalls = new AbortController();

const spawnWorker = () =>
  stack.spawnWorker({ taskQueue, workflowBundlePath: inject('workflowBundlePath'), env: s3Env });

/** The fixtures, in a bucket of their own. */
async function uploadFixtures(): Promise<void> {
  const nextId = idAllocator();
  families = [jsonLinesFamily(nextId), csvFamily(nextId), await parquetFamily(nextId)];
  bucket = `fault-loop-${randomUUID().slice(0, 18)}`;
  await s3Client.send(new CreateBucketCommand({ Bucket: bucket }));
  const files = families.flatMap((f) => f.files);
  // Bounded parallel uploads: MinIO shares the two cores with everything else.
  for (let i = 0; i < files.length; i += 20) {
    await Promise.all(
      files
        .slice(i, i + 20)
        .map((f) => s3Client.send(new PutObjectCommand({ Bucket: bucket, Key: f.key, Body: f.body }))),
    );
  }
}

beforeAll(async () => {
  // The stack starts while the fixtures upload; a stack that did start is closed by afterAll either way.
  const [uploaded, started] = await Promise.allSettled([uploadFixtures(), startIsolatedStack('fault_loop')]);
  if (started.status === 'fulfilled') stack = started.value;
  if (uploaded.status === 'rejected') throw uploaded.reason;
  if (started.status === 'rejected') throw started.reason;
  taskQueue = `fault-loop-${randomUUID()}`;
  app = await connectApp(stack, { taskQueue, runDefaults: RUN_DEFAULTS });
  worker = await spawnWorker();
  await storeMinioCredentials(app.api, s3);
  const connection = await app.api<{ id: string }>('POST', '/api/v1/connections', {
    name: 'minio',
    kind: 's3',
    config: minioConnectionConfig(s3),
  });
  expect(connection.status).toBe(201);
  ingestions = [];
  for (const family of families) {
    const table = `fault_${family.format}`;
    const created = await app.api<{ id: string }>('POST', '/api/v1/ingestions', {
      name: table,
      connection_id: connection.body.id,
      source: { bucket, prefix: `${family.format}/`, format: family.format },
      destination: `raw.${table}`,
    });
    expect(created.status).toBe(201);
    const good = family.files.filter((f) => f.rows !== undefined);
    ingestions.push({
      family,
      id: created.body.id,
      table,
      goodRows: Object.fromEntries(good.map((f) => [f.key, f.rows!])),
      badKeys: family.files.filter((f) => f.rows === undefined).map((f) => f.key),
    });
  }
}, SETUP_TIMEOUT_MS);

afterAll(async () => {
  abortCalls.abort();
  await app?.close();
  await stack?.close();
  s3Client.destroy();
});

interface Progress {
  /** Files SUCCESS or FAILED, over the three ingestions. */
  done: number;
  /** Files a lane has claimed and not finished. */
  inFlight: number;
  /** Runs that ended otherwise than PARTIAL_SUCCESS (the only right end of this load), as "id STATUS: error". */
  endedWrong: string[];
}

async function progress(): Promise<Progress> {
  const ids = app.sql(ingestions.map((i) => i.id));
  const [row] = await app.sql<Omit<Progress, 'endedWrong'>[]>`
    select count(*) filter (where status in ('SUCCESS', 'FAILED'))::int as done,
           count(*) filter (where status = 'PROCESSING')::int as "inFlight"
    from autoloader.processed_files where ingestion_id in ${ids}`;
  const wrong = await app.sql<{ id: string; status: string; error: string | null }[]>`
    select id, status, error from autoloader.runs
    where ingestion_id in ${ids} and status not in ('RUNNING', 'PARTIAL_SUCCESS')`;
  return {
    done: row?.done ?? 0,
    inFlight: row?.inFlight ?? 0,
    endedWrong: wrong.map((r) => `${r.id} ${r.status}: ${r.error ?? ''}`),
  };
}

/**
 * The fault's moment: its share of the files done, with a lane in the middle of a batch, so the
 * fault lands inside the work. Fails at once if the worker dies by itself, if a run ends wrongly
 * (waiting out the timeout would only delay the verdict), or if every file is done first (the
 * schedule outran the load: a fault then would prove nothing about a run).
 */
async function momentOf(fault: PlannedFault, totalFiles: number): Promise<Progress> {
  const at = await Promise.race([
    waitFor(
      `${fault.afterFilesDone} files done with a batch in flight (fault #${fault.n})`,
      async () => {
        const p = await progress();
        const due = p.done >= fault.afterFilesDone && p.inFlight > 0;
        return due || p.done === totalFiles || p.endedWrong.length > 0 ? p : undefined;
      },
      { timeoutMs: FAULT_MOMENT_TIMEOUT_MS, intervalMs: 25 },
    ),
    worker.died,
  ]);
  if (at.endedWrong.length > 0)
    throw new Error(`a run ended wrongly before fault #${fault.n}: ${at.endedWrong.join('; ')}`);
  if (at.done === totalFiles)
    throw new Error(
      `every file was done before fault #${fault.n} could fire: the load is too short for the plan`,
    );
  return at;
}

/** The fault itself; each one's recovery is the system's job, not the test's (the services just come back). */
async function injectFault(kind: FaultKind): Promise<void> {
  switch (kind) {
    case 'kill-worker':
      await worker.kill();
      worker = await spawnWorker();
      return;
    case 'restart-temporal':
      await stack.stopTemporal();
      await stack.startTemporal();
      return;
    case 'restart-postgres':
      await stack.stopPostgres();
      await stack.startPostgres();
      return;
  }
}

const runHandle = (ingestionId: string) =>
  app.client.workflow.getHandle<typeof ingestionRunWorkflow>(workflowIds.ingestion(ingestionId));

/** Each ingestion's current run outcome, on Temporal's word; fails at once if the worker dies by itself. */
function runResults(): Promise<RunSummary[]> {
  return Promise.race([
    Promise.all(
      ingestions.map((i) => app.client.withAbortSignal(abortCalls.signal, () => runHandle(i.id).result())),
    ),
    worker.died,
  ]);
}

async function startRuns(): Promise<string[]> {
  const runIds: string[] = [];
  for (const i of ingestions) {
    const started = await app.api<{ id: string }>('POST', `/api/v1/ingestions/${i.id}/run`);
    expect(started.status, `POST /run of ${i.table}: ${JSON.stringify(started.body)}`).toBe(202);
    runIds.push(started.body.id);
  }
  return runIds;
}

/** The highest attempt any processFiles activity of the ingestion's current run needed. */
async function maxProcessFilesAttempt(ingestionId: string): Promise<number> {
  const history = await runHandle(ingestionId).fetchHistory();
  const scheduled = new Map<string, string>();
  let max = 0;
  for (const event of history.events ?? []) {
    const sched = event.activityTaskScheduledEventAttributes;
    if (sched) scheduled.set(String(event.eventId), sched.activityType?.name ?? '');
    const start = event.activityTaskStartedEventAttributes;
    if (start && scheduled.get(String(start.scheduledEventId)) === 'processFiles')
      max = Math.max(max, start.attempt ?? 0);
  }
  return max;
}

const keyOf = (path: string) => path.replace(/^s3:\/\/[^/]+\//, '');

/** What the ledger says of each file, in the shape the expectations are written in. */
async function ledgerOutcomes(i: LoopIngestion): Promise<Record<string, unknown>> {
  const rows = await app.sql<
    {
      file_path: string;
      status: string;
      records: number | null;
      error_message: string | null;
      error_type: string | null;
      error_permanent: boolean;
    }[]
  >`
    select file_path, status, records_ingested::float8 as records, error_message, error_type, error_permanent
    from autoloader.processed_files where ingestion_id = ${i.id} and scope = 'live'`;
  return Object.fromEntries(
    rows.map((r) => [
      keyOf(r.file_path),
      r.status === 'SUCCESS'
        ? { status: r.status, records: r.records }
        : {
            status: r.status,
            errorRecorded: Boolean(r.error_message && r.error_type),
            permanent: r.error_permanent,
          },
    ]),
  );
}

async function failedFileErrors(i: LoopIngestion): Promise<string[]> {
  const rows = await app.sql<{ file_path: string; error_type: string; error_message: string }[]>`
    select file_path, error_type, error_message from autoloader.processed_files
    where ingestion_id = ${i.id} and status = 'FAILED' order by file_path`;
  return rows.map((r) => `${keyOf(r.file_path)}: ${r.error_type}: ${r.error_message.slice(0, 120)}`);
}

async function rowsPerFile(i: LoopIngestion): Promise<Record<string, number>> {
  const rows = await app.sql.unsafe<{ path: string; n: number }[]>(
    `select _source_file as path, count(*)::int as n from raw.${i.table} group by 1`,
  );
  return Object.fromEntries(rows.map((r) => [keyOf(r.path), r.n]));
}

async function idCounts(tables: string[]): Promise<{ rows: number; distinctIds: number }> {
  const union = tables.map((t) => `select id::bigint as id from raw.${t}`).join(' union all ');
  const [row] = await app.sql.unsafe<{ rows: number; distinctIds: number }[]>(
    `select count(*)::int as rows, count(distinct id)::int as "distinctIds" from (${union}) ids`,
  );
  return row!;
}

/** Where things stand, for a failure's post-mortem. */
async function diagnostics(): Promise<string> {
  const files = await app.sql<{ ingestion_id: string; status: string; n: number }[]>`
    select ingestion_id, status, count(*)::int as n from autoloader.processed_files
    where ingestion_id in ${app.sql(ingestions.map((i) => i.id))} group by 1, 2 order by 1, 2`;
  const runs = await app.sql<{ id: string; ingestion_id: string; status: string; error: string | null }[]>`
    select id, ingestion_id, status, error from autoloader.runs
    where ingestion_id in ${app.sql(ingestions.map((i) => i.id))} order by started_at`;
  return [
    'files by status:',
    ...files.map((f) => `  ${f.ingestion_id} ${f.status} ${f.n}`),
    'runs:',
    ...runs.map((r) => `  ${r.ingestion_id} ${r.id} ${r.status} ${r.error ?? ''}`),
    '--- current worker output (tail) ---',
    worker.output().slice(-4_000),
  ].join('\n');
}

describe('the fault-injection loop', () => {
  it(
    `seed ${settings.seed}, ${settings.count} faults: every file once, the runs end, the ingestions stay free`,
    async () => {
      const totalFiles = families.reduce((n, f) => n + f.files.length, 0);
      const plan = planFaults({ settings, totalFiles, window: FAULT_WINDOW });
      console.info(
        `fault loop: FAULT_SEED=${settings.seed} FAULT_COUNT=${settings.count} over ${totalFiles} files\n${describePlan(plan)}`,
      );
      const fired: string[] = [];
      onTestFailed(async () => {
        const state = await diagnostics().catch((err: unknown) => `diagnostics unavailable: ${String(err)}`);
        console.error(
          `fault loop FAILED: replay with FAULT_SEED=${settings.seed} FAULT_COUNT=${settings.count}\n${fired.join('\n')}\n${state}`,
        );
      });

      const startedAt = Date.now();
      const runIds = await startRuns();
      for (const fault of plan) {
        const at = await momentOf(fault, totalFiles);
        const faultStart = Date.now();
        await injectFault(fault.kind);
        const line = `  #${fault.n} ${fault.kind} at ${at.done}/${totalFiles} done, ${at.inFlight} in flight, +${((faultStart - startedAt) / 1000).toFixed(1)} s, took ${Date.now() - faultStart} ms`;
        fired.push(line);
        console.info(`fault loop: fired${line}`);
      }
      const summaries = await runResults();
      const loopMs = Date.now() - startedAt;

      for (const [n, i] of ingestions.entries()) {
        const good = Object.values(i.goodRows);
        expect(summaries[n], i.table).toMatchObject({
          runId: runIds[n],
          status: 'PARTIAL_SUCCESS',
          filesProcessed: good.length,
          filesFailed: i.badKeys.length,
          recordsWritten: good.reduce((a, b) => a + b, 0),
        });
        expect(await ledgerOutcomes(i), i.table).toEqual({
          ...Object.fromEntries(
            Object.entries(i.goodRows).map(([key, rows]) => [key, { status: 'SUCCESS', records: rows }]),
          ),
          ...Object.fromEntries(
            i.badKeys.map((key) => [key, { status: 'FAILED', errorRecorded: true, permanent: true }]),
          ),
        });
        // Each good file's rows, once; no row of a bad file.
        expect(await rowsPerFile(i), i.table).toEqual(i.goodRows);
        console.info(`fault loop: ${i.table} failed files:\n  ${(await failedFileErrors(i)).join('\n  ')}`);
      }
      const goodRows = ingestions.flatMap((i) => Object.values(i.goodRows)).reduce((a, b) => a + b, 0);
      const tables = ingestions.map((i) => i.table);
      expect(await idCounts(tables)).toEqual({ rows: goodRows, distinctIds: goodRows });
      // The faults bit: at least one load was interrupted and retried by Temporal.
      const attempts = await Promise.all(ingestions.map((i) => maxProcessFilesAttempt(i.id)));
      expect(Math.max(...attempts)).toBeGreaterThan(1);

      // Free for a new run, which finds nothing new: bad files stay failed until they change.
      const secondRunIds = await startRuns();
      const second = await runResults();
      for (const [n, i] of ingestions.entries()) {
        expect(second[n], i.table).toMatchObject({
          runId: secondRunIds[n],
          status: 'SUCCESS',
          filesProcessed: 0,
          filesFailed: 0,
          recordsWritten: 0,
        });
      }
      expect(await idCounts(tables)).toEqual({ rows: goodRows, distinctIds: goodRows });
      console.info(
        `fault loop: PASSED seed ${settings.seed}, ${plan.length} faults (${plan.filter((f) => f.kind === 'kill-worker').length} worker kills, ${plan.filter((f) => f.kind === 'restart-temporal').length} Temporal restarts, ${plan.filter((f) => f.kind === 'restart-postgres').length} Postgres restarts), ${totalFiles} files, ${goodRows} rows; loop ${(loopMs / 1000).toFixed(1)} s, max processFiles attempt ${Math.max(...attempts)}`,
      );
    },
    LOOP_TIMEOUT_MS,
  );
});
