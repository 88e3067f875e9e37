import { randomUUID } from 'node:crypto';
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { Client } from '@temporalio/client';
import type { NativeConnection, Worker } from '@temporalio/worker';
import { inject } from 'vitest';
import { type App, createApp } from '../../src/api/app.js';
import { inProcessClient } from '../../src/api/in-process.js';
import { createToken, ensureTenant } from '../../src/auth/tokens.js';
import { loadConfig } from '../../src/config.js';
import { createDb } from '../../src/db/client.js';
import { createLogger } from '../../src/lib/logger.js';
import type { AddressPolicy } from '../../src/net/address-policy.js';
import type { RefreshSettings } from '../../src/services/deps.js';
import { serviceDepsFromConfig } from '../../src/services/deps.js';
import { connectClient, connectWorker } from '../../src/temporal/connect.js';
import { workflowIds } from '../../src/temporal/ids.js';
import { buildWorker } from '../../src/worker.js';
import { holdLock } from './locks.js';

export interface HarnessOptions {
  parallelism?: number;
  batchMaxFiles?: number;
  batchMaxBytes?: number;
  localSourceRoots?: string[];
  refresh?: Partial<RefreshSettings>;
  /** Settings for this harness's worker and API (as environment variables are read). */
  env?: Record<string, string>;
  /** A state database of its own (privateStateDatabase) instead of the suite's shared one. */
  databaseUrl?: string;
}

/**
 * One per test file: a real worker on its own task queue, the real API app (called in-process with
 * `app.request`), a tenant with a token, and clients for Postgres, S3 and Temporal.
 */
export async function startHarness(opts: HarnessOptions = {}) {
  const databaseUrl = opts.databaseUrl ?? inject('databaseUrl');
  const temporalAddress = inject('temporalAddress');
  const s3 = inject('s3');
  const localSourceRoots = opts.localSourceRoots ?? ['/tmp'];
  const config = loadConfig({
    ...process.env,
    LOG_LEVEL: 'warn',
    LOCAL_SOURCE_ROOTS: localSourceRoots.join(','),
    ...opts.env,
  });
  const log = createLogger(process.env.TEST_LOG_LEVEL ?? 'warn', 'test');
  const taskQueue = `test-${randomUUID()}`;
  const {
    db,
    sql,
    close: closeDb,
  } = createDb(databaseUrl, { max: 12, lockTimeoutMs: config.run.lockTimeoutSeconds * 1000 });

  const client: Client = await connectClient(config.temporal, temporalAddress);
  const workerConnection: NativeConnection = await connectWorker(config.temporal, temporalAddress);
  const runDefaults = {
    parallelism: opts.parallelism ?? 2,
    batchMaxFiles: opts.batchMaxFiles ?? 50,
    batchMaxBytes: opts.batchMaxBytes ?? 64 * 1024 * 1024,
  };
  const startWorker = async () => {
    const w: Worker = await buildWorker({
      config: { ...config, refresh: { ...config.refresh, ...opts.refresh } },
      sql,
      connection: workerConnection,
      taskQueue,
      workflowBundlePath: inject('workflowBundlePath'),
    });
    return { worker: w, running: w.run() };
  };
  let current = await startWorker();
  /** Stops the worker (as a deploy or crash would) and starts a fresh one on the same task queue. */
  async function restartWorker(): Promise<void> {
    current.worker.shutdown();
    await current.running;
    current = await startWorker();
  }

  /** The real app; tests that need other settings (or an unreachable Temporal) build their own. */
  const makeApp = (
    overrides: {
      refresh?: Partial<RefreshSettings>;
      temporal?: Client;
      db?: ReturnType<typeof createDb>;
      /** Start workflows on another task queue (workers other than this harness's poll it). */
      taskQueue?: string;
      runDefaults?: Partial<typeof runDefaults>;
      /** Another address policy for the tenants' endpoints (the suite's allows private addresses). */
      address?: AddressPolicy;
    } = {},
  ): App =>
    createApp({
      ...serviceDepsFromConfig(overrides.address ? { ...config, address: overrides.address } : config, {
        db: overrides.db?.db ?? db,
        sql: overrides.db?.sql ?? sql,
        temporal: overrides.temporal ?? client,
      }),
      taskQueue: overrides.taskQueue ?? taskQueue,
      runDefaults: { ...runDefaults, ...overrides.runDefaults },
      refresh: { ...config.refresh, ...opts.refresh, ...overrides.refresh },
      log,
    });
  const app = makeApp();

  const tenantId = `tenant_${randomUUID().slice(0, 8)}`;
  await ensureTenant(db, tenantId, 'test tenant', { local_roots: localSourceRoots });
  const { token } = await createToken(db, { tenantId, name: 'test', subject: 'tester@example.com' });

  const s3Client = new S3Client({
    endpoint: s3.endpoint,
    region: s3.region,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKey, secretAccessKey: s3.secretKey },
  });

  const api = inProcessClient(app, token);

  async function createBucket(): Promise<string> {
    const bucket = `t-${randomUUID().slice(0, 18)}`;
    await s3Client.send(new CreateBucketCommand({ Bucket: bucket }));
    return bucket;
  }

  async function putObject(bucket: string, key: string, body: string | Buffer): Promise<void> {
    await s3Client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
  }

  /** MinIO's credentials as the tenant's secrets, stored once: S3 connections name them. */
  let secretsStored: Promise<void> | undefined;
  const storeMinioSecrets = () => {
    secretsStored ??= storeMinioCredentials(api, s3);
    return secretsStored;
  };

  async function createS3Connection(): Promise<string> {
    await storeMinioSecrets();
    const res = await api<{ id: string }>('POST', '/api/v1/connections', {
      name: `minio-${randomUUID().slice(0, 8)}`,
      kind: 's3',
      config: minioConnectionConfig(s3),
    });
    if (res.status !== 201) throw new Error(`connection not created: ${JSON.stringify(res.body)}`);
    return res.body.id;
  }

  /**
   * A bucket with the given files and an S3 ingestion over it into `raw.<unique table>`. Source
   * settings (pattern, format, schema_mode…) may be overridden.
   */
  async function createIngestion(
    files: Record<string, string | Buffer> = {},
    source: Record<string, unknown> = {},
    prefix = 't',
  ): Promise<{ id: string; bucket: string; table: string }> {
    const bucket = await createBucket();
    for (const [key, body] of Object.entries(files)) await putObject(bucket, key, body);
    const table = `${prefix}_${bucket.replaceAll('-', '_')}`.slice(0, 60);
    const res = await api<{ id: string }>('POST', '/api/v1/ingestions', {
      name: table,
      connection_id: await createS3Connection(),
      source: { bucket, format: 'jsonl', ...source },
      destination: `raw.${table}`,
    });
    if (res.status !== 201) throw new Error(`ingestion not created: ${JSON.stringify(res.body)}`);
    return { id: res.body.id, bucket, table };
  }

  /**
   * Creates `raw.<table>` and holds an exclusive lock on it until `release()`: a run loading into it
   * is then certainly still running, which makes "while a run is going" tests deterministic.
   */
  async function holdTableLock(table: string): Promise<{ release: () => Promise<void> }> {
    await sql.unsafe('create schema if not exists raw');
    await sql.unsafe(
      `create table raw.${table} (id bigint, _source_file text not null, _ingested_at timestamptz not null default now(), _run_id text not null)`,
    );
    // As if an earlier ingestion of this tenant had made it: the tenant's own, free to claim.
    await sql`insert into autoloader.owned_tables (schema_name, table_name, tenant_id) values ('raw', ${table}, ${tenantId}) on conflict do nothing`;
    return lockTable(table);
  }

  /** Holds an exclusive lock on the existing `raw.<table>` until `release()`. */
  const lockTable = (table: string) => holdLock(sql, `raw.${table}`);

  /** Waits for whatever operation holds the ingestion to finish (on Temporal's word, not a timer). */
  async function waitForIngestionIdle(ingestionId: string): Promise<void> {
    try {
      await client.workflow.getHandle(workflowIds.ingestion(ingestionId)).result();
    } catch (err) {
      // A FAILED run fails its workflow; the run row records why, and tests assert on that.
      if (!(err instanceof Error && err.name === 'WorkflowFailedError')) throw err;
    }
  }

  /** POST /run, wait for the workflow, return the finished run as the API shows it. */
  /** Fires a schedule now and waits for the workflow that tick started (its outcome). */
  async function tickSchedule<T>(scheduleId: string): Promise<T> {
    const handle = client.schedule.getHandle(scheduleId);
    const before = (await handle.describe()).info.recentActions.length;
    await handle.trigger();
    // The trigger is asynchronous on the server: poll until the schedule records the action it took.
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      const d = await handle.describe();
      if (d.info.recentActions.length > before) {
        const started = d.info.recentActions.at(-1)!.action.workflow;
        return client.workflow.getHandle(started.workflowId, started.firstExecutionRunId).result();
      }
      await new Promise((r) => setImmediate(r));
    }
    throw new Error(`schedule ${scheduleId} did not act`);
  }

  async function runAndWait(ingestionId: string) {
    const started = await api<{ id: string }>('POST', `/api/v1/ingestions/${ingestionId}/run`);
    if (started.status !== 202)
      throw new Error(`run not started: ${started.status} ${JSON.stringify(started.body)}`);
    await waitForIngestionIdle(ingestionId);
    const run = await api<RunBody>('GET', `/api/v1/runs/${started.body.id}`);
    return run.body;
  }

  return {
    databaseUrl,
    app,
    makeApp,
    api,
    db,
    sql,
    client,
    s3Client,
    taskQueue,
    tenantId,
    token,
    createBucket,
    putObject,
    createS3Connection,
    createIngestion,
    holdTableLock,
    lockTable,
    runAndWait,
    tickSchedule,
    waitForIngestionIdle,
    restartWorker,
    async close() {
      current.worker.shutdown();
      await current.running;
      await workerConnection.close();
      await client.connection.close();
      await closeDb();
    },
  };
}

export type Harness = Awaited<ReturnType<typeof startHarness>>;

export interface RunBody {
  id: string;
  status: string;
  files_discovered: number;
  files_processed: number;
  files_failed: number;
  files_skipped: number;
  records_written: number;
  rows_rejected: number;
  bytes_read: number;
  error: string | null;
}

/** `count` JSON records with sequential ids starting at `first`, one per line. */
/** JSON lines of the given records. */
export function jsonRecords(rows: object[]): string {
  return `${rows.map((r) => JSON.stringify(r)).join('\n')}\n`;
}

export function jsonLines(first: number, count: number): string {
  const lines: string[] = [];
  for (let id = first; id < first + count; id++) {
    lines.push(
      JSON.stringify({
        id,
        user: `user_${id % 97}`,
        amount: Number((id * 1.25).toFixed(2)),
        ts: new Date(Date.UTC(2025, 0, 1, 0, 0, id % 60)).toISOString(),
        tags: ['a', `t${id % 3}`],
      }),
    );
  }
  return `${lines.join('\n')}\n`;
}

export function csvRows(first: number, count: number): string {
  const lines = ['id,user,amount,ts'];
  for (let id = first; id < first + count; id++) {
    lines.push(
      `${id},user_${id % 97},${(id * 1.25).toFixed(2)},${new Date(Date.UTC(2025, 0, 1, 0, 0, id % 60)).toISOString()}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/** An `s3` connection to the test MinIO; its credentials are the tenant's stored secrets (storeMinioCredentials). */
export function minioConnectionConfig(s3: { endpoint: string; region: string }) {
  return {
    endpoint: s3.endpoint,
    region: s3.region,
    force_path_style: true,
    access_key_id: { secret: 'minio-access-key' },
    secret_access_key: { secret: 'minio-secret-key' },
  };
}

/** Stores MinIO's credentials as the tenant's secrets, through the API, as a user would. */
export async function storeMinioCredentials(
  api: (method: string, path: string, body?: unknown) => Promise<{ status: number; body: unknown }>,
  s3: { accessKey: string; secretKey: string },
): Promise<void> {
  for (const [name, value] of [
    ['minio-access-key', s3.accessKey],
    ['minio-secret-key', s3.secretKey],
  ] as const) {
    const res = await api('PUT', `/api/v1/secrets/${name}`, { value });
    if (res.status !== 200)
      throw new Error(`secret ${name} not stored: ${res.status} ${JSON.stringify(res.body)}`);
  }
}
