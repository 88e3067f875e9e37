/**
 * What `npm run bench` and `npm run bench:curves` share: the stack they measure (services, worker
 * child, API, Temporal client, MinIO bucket and connection), the meter of CPU and worker RSS, and the
 * checks that a run loaded what it should.
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import type { RunJson } from '../src/api/routes/runs.js';
import { loadConfig } from '../src/config.js';
import { createDb, type Sql } from '../src/db/client.js';
import { serviceDepsFromConfig } from '../src/services/deps.js';
import { connectClient } from '../src/temporal/connect.js';
import { type BenchApi, benchApi, s3CredentialEnv } from './api.js';
import { jsonLines } from './data.js';
import { findPid, machineBusySeconds, RssSampler, treeCpuSeconds } from './procstat.js';
import { createBucket, forEachLimit, listAll, putExtractedTar, s3Client } from './s3.js';
import type { Services } from './services.js';
import { buildWorker, startWorkerChild, type WorkerChild, workerMode } from './worker-child.js';

/** Progress on stderr, with the seconds since the script started. */
export function progressNote(label: string): (msg: string) => void {
  const started = performance.now();
  return (msg) =>
    process.stderr.write(
      `[${label} ${((performance.now() - started) / 1000).toFixed(1).padStart(6)} s] ${msg}\n`,
    );
}

/**
 * The settings of the worker's environment: what it reads through src/config.ts, how it is run and
 * its allocator's tuning. Explicit, and printed.
 */
export function runSettings(): Record<string, string> {
  const defaults = loadConfig({});
  const setting = (name: string, fallback: number) => process.env[name] ?? String(fallback);
  return {
    RUN_FILE_PARALLELISM: setting('RUN_FILE_PARALLELISM', defaults.run.fileParallelism),
    RUN_BATCH_MAX_FILES: setting('RUN_BATCH_MAX_FILES', defaults.run.batchMaxFiles),
    RUN_BATCH_MAX_BYTES: setting('RUN_BATCH_MAX_BYTES', defaults.run.batchMaxBytes),
    WORKER_MAX_CONCURRENT_ACTIVITIES: setting(
      'WORKER_MAX_CONCURRENT_ACTIVITIES',
      defaults.worker.maxConcurrentActivities,
    ),
    FILE_MAX_RETRIES: setting('FILE_MAX_RETRIES', defaults.run.fileMaxRetries),
    LOAD_DIRECT_COPY: process.env.LOAD_DIRECT_COPY ?? String(defaults.run.directCopy),
    // built: node on the compiled worker, as in production; source: through tsx.
    BENCH_WORKER: workerMode(),
    // glibc's allocator as the README's production commands set it for the worker: two arenas, and
    // blocks of 128 KiB and more mapped and unmapped on their own (the threshold fixed, not raised
    // as large blocks are freed), so freed buffers go back to the system instead of fragmenting.
    // BENCH_MALLOC=default leaves glibc's defaults, to compare.
    ...(process.env.BENCH_MALLOC === 'default'
      ? {}
      : {
          MALLOC_ARENA_MAX: process.env.MALLOC_ARENA_MAX ?? '2',
          MALLOC_MMAP_THRESHOLD_: process.env.MALLOC_MMAP_THRESHOLD_ ?? '131072',
        }),
  };
}

// Measuring a phase: wall time, CPU by process, worker RSS

export const processes = ['postgres', 'worker', 'minio', 'temporal', 'bench+psql', 'other'] as const;
export type Cpu = Record<(typeof processes)[number], number>;

export interface Measured<T> {
  value: T;
  ms: number;
  cpu: Cpu;
  rssPeakMb: number;
}

export class Meter {
  constructor(
    private readonly sql: Sql,
    private readonly pids: { postgres: number; minio: number; temporal: number; worker: number },
    private readonly rss: RssSampler,
  ) {}

  private snapshot(): Cpu & { machine: number } {
    const pg = treeCpuSeconds(this.pids.postgres);
    const minio = treeCpuSeconds(this.pids.minio);
    const temporal = treeCpuSeconds(this.pids.temporal);
    const worker = treeCpuSeconds(this.pids.worker);
    // The services and the worker are our children too: what is left of our tree is this process
    // (API app, Temporal client) and psql.
    const bench = treeCpuSeconds(process.pid) - pg - minio - temporal - worker;
    const machine = machineBusySeconds();
    return {
      postgres: pg,
      worker,
      minio,
      temporal,
      'bench+psql': bench,
      other: 0,
      machine,
    };
  }

  /** Times `fn` after a CHECKPOINT, so WAL written by an earlier phase is not flushed on this one's clock. */
  async measure<T>(fn: () => Promise<T>): Promise<Measured<T>> {
    await this.sql`checkpoint`;
    this.rss.reset();
    const before = this.snapshot();
    const t0 = performance.now();
    const value = await fn();
    const ms = performance.now() - t0;
    const after = this.snapshot();
    const cpu = {} as Cpu;
    let ours = 0;
    for (const p of processes) {
      cpu[p] = after[p] - before[p];
      ours += cpu[p];
    }
    cpu.other = Math.max(0, after.machine - before.machine - ours);
    return { value, ms, cpu, rssPeakMb: this.rss.peak() };
  }
}

// Checks: a figure from a run that did not load everything would be meaningless

export function expectRun(run: RunJson, want: { discovered: number; processed: number; records: number }) {
  const problems: string[] = [];
  if (run.status !== 'SUCCESS') problems.push(`status ${run.status} (${run.error ?? 'no error'})`);
  if (run.files_discovered !== want.discovered)
    problems.push(`files_discovered ${run.files_discovered}, want ${want.discovered}`);
  if (run.files_processed !== want.processed)
    problems.push(`files_processed ${run.files_processed}, want ${want.processed}`);
  if (run.records_written !== want.records)
    problems.push(`records_written ${run.records_written}, want ${want.records}`);
  if (run.files_failed !== 0) problems.push(`files_failed ${run.files_failed}`);
  if (problems.length > 0) throw new Error(`run ${run.id}: ${problems.join('; ')}`);
}

export async function vacuum(sql: Sql, table: string): Promise<void> {
  // Untimed: otherwise autovacuum of the rows just loaded would run on the next phase's clock.
  await sql.unsafe(`vacuum (analyze) ${table}`);
}

/**
 * Loading 100,000 files through real runs would take longer than the rest of the bench, so their
 * processed_files rows are written directly — with the ETags, sizes and times the listing reports,
 * exactly as successful loads would have left them. The objects themselves are real.
 */
export async function seedProcessedFiles(
  ctx: { sql: Sql; s3: S3Client; bucket: string },
  ingestionId: string,
  prefix: string,
): Promise<void> {
  const { objects } = await listAll(ctx.s3, ctx.bucket, prefix, true);
  const chunk = 10_000;
  for (let i = 0; i < objects.length; i += chunk) {
    const part = objects.slice(i, i + chunk);
    await ctx.sql`
      insert into autoloader.processed_files
        (ingestion_id, run_id, file_path, file_size_bytes, file_modified_at, file_etag, status,
         processed_at, records_ingested, bytes_read, processing_duration_ms)
      select ${ingestionId}, 'run_bench_seed', u.path, u.size, u.mtime, u.etag, 'SUCCESS', now(), 1, u.size, 1
      from unnest(${part.map((o) => `s3://${ctx.bucket}/${o.key}`)}::text[],
                  ${part.map((o) => o.size)}::bigint[],
                  ${part.map((o) => o.modifiedAt?.toISOString() ?? null)}::timestamptz[],
                  ${part.map((o) => o.etag)}::text[]) as u(path, size, mtime, etag)`;
  }
  await vacuum(ctx.sql, 'autoloader.processed_files');
}

export async function walLsn(sql: Sql): Promise<string> {
  const [row] = await sql<{ lsn: string }[]>`select pg_current_wal_lsn()::text as lsn`;
  return row!.lsn;
}

export async function walBytesSince(sql: Sql, lsn: string): Promise<number> {
  const [row] = await sql<{ bytes: number }[]>`
    select pg_wal_lsn_diff(pg_current_wal_lsn(), ${lsn}::pg_lsn)::float8 as bytes`;
  return row!.bytes;
}

export interface Stack {
  sql: Sql;
  api: BenchApi;
  meter: Meter;
  s3: S3Client;
  bucket: string;
  connectionId: string;
  worker: WorkerChild;
  temporal: Awaited<ReturnType<typeof connectClient>>;
  pgVersion: string;
}

/**
 * The worker (a child process, measured on its own), the API app and a Temporal client on started
 * services, a bucket and an S3 connection to it. What it starts is stopped by `cleanups`, in reverse.
 */
export async function openStack(
  root: string,
  services: Services,
  settings: Record<string, string>,
  cleanups: (() => Promise<void>)[],
): Promise<Stack> {
  const { db, sql, close } = createDb(services.databaseUrl, { max: 4, applicationName: 'bench' });
  cleanups.push(close);
  await sql`create extension if not exists pg_stat_statements`;
  const [pgVersion] = await sql<{ v: string }[]>`select version() as v`;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...settings,
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
    DATABASE_URL: services.databaseUrl,
    TEMPORAL_ADDRESS: services.temporalAddress,
    TEMPORAL_NAMESPACE: 'default',
    TEMPORAL_TASK_QUEUE: 'bench',
    BENCH_WORKFLOW_BUNDLE: services.workflowBundlePath,
    // MinIO runs on 127.0.0.1.
    AUTOLOADER_ALLOW_PRIVATE_ENDPOINTS: 'true',
    [s3CredentialEnv.accessKey]: services.s3.accessKey,
    [s3CredentialEnv.secretKey]: services.s3.secretKey,
  };
  const config = loadConfig(env);
  if (workerMode() === 'built') buildWorker();
  const worker = await startWorkerChild(env);
  cleanups.push(worker.stop);
  const rss = new RssSampler(worker.pid);
  cleanups.push(async () => rss.stop());
  const temporal = await connectClient(config.temporal, services.temporalAddress);
  cleanups.push(() => temporal.connection.close());
  const pid = (what: string, needle: string) => {
    const found = findPid(needle);
    if (found === undefined) throw new Error(`cannot find the ${what} process (${needle})`);
    return found;
  };
  const meter = new Meter(
    sql,
    {
      postgres: pid('postgres', join(root, 'postgres')),
      minio: pid('minio', join(root, 'minio')),
      temporal: pid('temporal', join(root, 'temporal')),
      worker: worker.pid,
    },
    rss,
  );
  const api = await benchApi(serviceDepsFromConfig(config, { db, sql, temporal }));
  const s3 = s3Client(services.s3);
  cleanups.push(async () => s3.destroy());
  const bucket = 'bench';
  await createBucket(s3, bucket);
  return {
    sql,
    api,
    meter,
    s3,
    bucket,
    connectionId: await api.createS3Connection(services.s3),
    worker,
    temporal,
    pgVersion: pgVersion?.v ?? 'unknown',
  };
}

/**
 * A data folder for the script (0755: as root, the embedded Postgres runs as `postgres` and must
 * get in) and the cleanup that stops what was started and removes it, also on SIGINT/SIGTERM.
 */
export async function benchRoot(note: (msg: string) => void) {
  const root = await mkdtemp(join(os.tmpdir(), 'autoloader-bench-'));
  await chmod(root, 0o755);
  const cleanups: (() => Promise<void>)[] = [];
  let cleaning: Promise<void> | undefined;
  const cleanup = () => {
    cleaning ??= (async () => {
      for (const fn of cleanups.reverse()) {
        await fn().catch((err: unknown) => note(`cleanup step failed: ${String(err)}`));
      }
      if (process.env.BENCH_KEEP_DATA) note(`BENCH_KEEP_DATA set: leaving ${root}`);
      else await rm(root, { recursive: true, force: true });
    })();
    return cleaning;
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      note(`${signal}: stopping`);
      void cleanup().finally(() => process.exit(130));
    });
  }
  return { root, cleanups, cleanup };
}

/**
 * `count` objects `<prefix><name>-<i>.jsonl` with `body(i)`, uploaded as tar archives MinIO extracts
 * (thousands a second, against a few hundred single PUTs), `perArchive` objects an archive.
 */
export async function uploadExtracted(
  s3: S3Client,
  bucket: string,
  opts: { prefix: string; name: string; count: number; perArchive: number; body: (i: number) => Buffer },
): Promise<void> {
  const { prefix, name, count, perArchive, body } = opts;
  const width = String(count - 1).length;
  await forEachLimit(Math.ceil(count / perArchive), 4, (a) => {
    const objects: { key: string; body: Buffer }[] = [];
    for (let i = a * perArchive; i < Math.min(count, (a + 1) * perArchive); i++)
      objects.push({ key: `${prefix}${name}-${String(i).padStart(width, '0')}.jsonl`, body: body(i) });
    return putExtractedTar(s3, bucket, objects);
  });
}

/**
 * `files` objects of `rowsPerFile` JSON lines under `prefix` (uploaded as archives MinIO extracts),
 * then a measured run of the ingestion over them, checked to load every file and row. The prefix
 * also holds the ingestion's one seed file, processed before.
 */
export async function smallFilesRun(
  s: Stack,
  ingestionId: string,
  prefix: string,
  files: number,
  rowsPerFile: number,
): Promise<Measured<RunJson>> {
  await uploadExtracted(s.s3, s.bucket, {
    prefix,
    name: 'f',
    count: files,
    perArchive: 1_000,
    body: (i) => jsonLines(1 + i * rowsPerFile, rowsPerFile),
  });
  const run = await s.meter.measure(() => s.api.runAndWait(ingestionId));
  expectRun(run.value, { discovered: files + 1, processed: files, records: files * rowsPerFile });
  return run;
}

/** `count` one-line objects under `prefix`: what a no-op run lists. */
export function uploadTinyObjects(
  s3: S3Client,
  bucket: string,
  prefix: string,
  count: number,
): Promise<void> {
  return uploadExtracted(s3, bucket, {
    prefix,
    name: 'o',
    count,
    perArchive: 5_000,
    body: (i) => Buffer.from(`{"id":${i}}\n`),
  });
}

/** Runs a script's main: exit 0 when it resolves, 1 with the error when it rejects. */
export function runMain(name: string, main: () => Promise<void>): void {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(
        `${name} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
      );
      process.exit(1);
    },
  );
}
