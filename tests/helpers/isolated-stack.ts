/**
 * A Temporal dev server and an embedded Postgres that belong to ONE test, so the test may stop and
 * restart them without disturbing the suite's shared services (tests/global-setup.ts). MinIO stays
 * shared: nothing here restarts it.
 *
 * Both services first start on free ports, then every restart reuses the same port and the same
 * data dir: Temporal's SQLite file keeps the workflow histories and Postgres keeps its cluster, so
 * a restart is an outage, not a reset — and the addresses that workers and pools were given stay
 * valid, as they would for a real server coming back.
 */
import { randomUUID } from 'node:crypto';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { type App, createApp } from '../../src/api/app.js';
import { inProcessClient } from '../../src/api/in-process.js';
import { createToken, ensureTenant } from '../../src/auth/tokens.js';
import { loadConfig } from '../../src/config.js';
import { createDb, type Db, type Sql } from '../../src/db/client.js';
import { migrate } from '../../src/db/migrate.js';
import { type EmbeddedPostgres, startEmbeddedPostgres } from '../../src/dev/postgres.js';
import { type DevLogger, toLogger } from '../../src/dev/service.js';
import { startTemporalDevServer, type TemporalDevServer } from '../../src/dev/temporal.js';
import { createLogger } from '../../src/lib/logger.js';
import { serviceDepsFromConfig } from '../../src/services/deps.js';
import { connectClient } from '../../src/temporal/connect.js';
import { spawnWorkerProcess, type WorkerProcess, type WorkerProcessOptions } from './spawn-worker.js';

/*
 * Same naming and owner file as global-setup's temp root: if this test process is killed hard, the
 * next `vitest run` removes the directory (its services die with us through their parent-death signal).
 */
const ROOT_PREFIX = 'autoloader-test-';
const OWNER_FILE = 'owner.pid';

/** Throwaway cluster: durability against an OS crash buys nothing here; a clean stop still checkpoints. */
const PG_FLAGS = ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off'];

export interface IsolatedStack {
  readonly root: string;
  /** host:port, the same across restarts. */
  readonly temporalAddress: string;
  /** postgres:// URL, the same across restarts. */
  readonly databaseUrl: string;
  readonly log: DevLogger;
  stopTemporal(): Promise<void>;
  startTemporal(): Promise<void>;
  stopPostgres(): Promise<void>;
  startPostgres(): Promise<void>;
  /** A worker in a child process against this stack; stopped by close() if the test has not. */
  spawnWorker(opts: Omit<WorkerProcessOptions, 'databaseUrl' | 'temporalAddress'>): Promise<WorkerProcess>;
  /** Stops every worker, then the services, then removes the data (unless KEEP_TEST_DATA). */
  close(): Promise<void>;
}

export async function startIsolatedStack(name: string): Promise<IsolatedStack> {
  const log = toLogger((msg) => console.error(`[${name}] ${msg}`));
  const root = await mkdtemp(join(tmpdir(), ROOT_PREFIX));
  await writeFile(join(root, OWNER_FILE), String(process.pid));
  // mkdtemp gives 0700; the embedded Postgres runs as the `postgres` OS user when we are root and
  // must be able to traverse into the root.
  await chmod(root, 0o755);
  const temporalDir = join(root, 'temporal');
  const postgresDir = join(root, 'postgres');

  let temporal: TemporalDevServer | undefined;
  let postgres: EmbeddedPostgres | undefined;
  const workers = new Set<WorkerProcess>();

  const close = async () => {
    // Workers first: they would otherwise log connection errors while the services go away.
    const stopped = await Promise.allSettled([...workers].map((w) => w.stop(5_000)));
    const services = await Promise.allSettled([temporal?.stop(), postgres?.stop()]);
    for (const r of [...stopped, ...services])
      if (r.status === 'rejected') log.error({ err: String(r.reason) }, 'stop failed');
    if (process.env.KEEP_TEST_DATA) log.info({ root }, 'KEEP_TEST_DATA set; leaving data in place');
    else await rm(root, { recursive: true, force: true });
  };

  try {
    const [t, p] = await Promise.allSettled([
      startTemporalDevServer({ dataDir: temporalDir, port: 0, log }),
      startEmbeddedPostgres({ dataDir: postgresDir, port: 0, log, postgresFlags: PG_FLAGS }),
    ]);
    if (t.status === 'fulfilled') temporal = t.value;
    if (p.status === 'fulfilled') postgres = p.value;
    if (t.status === 'rejected') throw t.reason;
    if (p.status === 'rejected') throw p.reason;
  } catch (err) {
    await close();
    throw err;
  }
  const temporalAddress = temporal!.address;
  const databaseUrl = postgres!.url;
  const temporalPort = Number(new URL(`grpc://${temporalAddress}`).port);
  const temporalUiPort = Number(new URL(temporal!.uiUrl).port);
  const postgresPort = postgres!.port;
  try {
    await migrate(databaseUrl);
  } catch (err) {
    await close();
    throw err;
  }

  return {
    root,
    temporalAddress,
    databaseUrl,
    log,
    async stopTemporal() {
      await temporal?.stop();
      temporal = undefined;
    },
    async startTemporal() {
      if (temporal) throw new Error('Temporal is already running');
      temporal = await startTemporalDevServer({
        dataDir: temporalDir,
        port: temporalPort,
        uiPort: temporalUiPort,
        log,
      });
    },
    async stopPostgres() {
      await postgres?.stop();
      postgres = undefined;
    },
    async startPostgres() {
      if (postgres) throw new Error('Postgres is already running');
      postgres = await startEmbeddedPostgres({
        dataDir: postgresDir,
        port: postgresPort,
        log,
        postgresFlags: PG_FLAGS,
      });
    },
    async spawnWorker(opts) {
      const worker = await spawnWorkerProcess({ ...opts, databaseUrl, temporalAddress });
      workers.add(worker);
      return worker;
    },
    close,
  };
}

export interface StackApp {
  app: App;
  db: Db;
  sql: Sql;
  client: Client;
  /** Calls the real API in-process (`app.request`) with the tenant's bearer token. */
  api<T = Record<string, unknown>>(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: T }>;
  close(): Promise<void>;
}

/**
 * The API app against an isolated stack, as the harness builds it against the shared one: a tenant,
 * a token, pools and a Temporal client. Runs are started through POST /run, the production path.
 */
export async function connectApp(
  stack: IsolatedStack,
  opts: {
    taskQueue: string;
    runDefaults: { parallelism: number; batchMaxFiles: number; batchMaxBytes: number };
  },
): Promise<StackApp> {
  const config = loadConfig({ ...process.env, LOG_LEVEL: 'warn' });
  const log = createLogger(process.env.TEST_LOG_LEVEL ?? 'warn', 'test');
  const { db, sql, close: closeDb } = createDb(stack.databaseUrl, { max: 4 });
  let client: Client;
  try {
    client = await connectClient(config.temporal, stack.temporalAddress);
  } catch (err) {
    await closeDb();
    throw err;
  }
  const app = createApp({
    ...serviceDepsFromConfig(config, { db, sql, temporal: client }),
    taskQueue: opts.taskQueue,
    runDefaults: opts.runDefaults,
    log,
  });
  const tenantId = `tenant_${randomUUID().slice(0, 8)}`;
  await ensureTenant(db, tenantId, 'crash test tenant');
  const { token } = await createToken(db, { tenantId, name: 'test', subject: 'tester@example.com' });

  return {
    app,
    db,
    sql,
    client,
    api: inProcessClient(app, token),
    async close() {
      await client.connection.close();
      await closeDb();
    },
  };
}
