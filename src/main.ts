import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { serve } from '@hono/node-server';
import { createApp } from './api/app.js';
import { createToken, tokenExists } from './auth/tokens.js';
import { type Config, loadConfig } from './config.js';
import { createDb, type Db } from './db/client.js';
import { migrate } from './db/migrate.js';
import { reachablePostgresDataDir, startEmbeddedPostgres } from './dev/postgres.js';
import { startTemporalDevServer } from './dev/temporal.js';
import { surviveConnectionLoss } from './lib/connection-loss.js';
import { createLogger, type Logger } from './lib/logger.js';
import { sweepScratch } from './lib/scratch.js';
import { newSecretKey } from './secrets/crypto.js';
import { putTenant } from './services/admin.js';
import { serviceDepsFromConfig } from './services/deps.js';
import { runStartupTasks } from './startup.js';
import { connectClient, connectWorker } from './temporal/connect.js';
import { tenantPolicySchema } from './tenancy/policy.js';
import { rootProblem, samplesRoot } from './tenancy/roots.js';
import { buildWorker, installRuntimeLogger, workerPoolSize } from './worker.js';

/**
 * `npm start`: the whole stack in one process on embedded defaults — a Postgres and a Temporal dev
 * server the project starts itself (unless DATABASE_URL / TEMPORAL_ADDRESS point elsewhere),
 * migrations, one worker and the API. Ctrl-C stops everything in reverse order.
 */
async function main() {
  const config = loadConfig(await embeddedDefaults(process.env));
  const log = createLogger(config.logLevel, 'autoloader', config.logFormat);
  installRuntimeLogger(log);
  surviveConnectionLoss(log);
  const stops: { name: string; stop: () => Promise<unknown> }[] = [];
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    for (const { name, stop } of stops.reverse()) {
      await stop().catch((err: unknown) => log.error({ err, name }, 'stop failed'));
    }
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));

  for (const root of config.localSourceRoots) {
    const problem = rootProblem(root, config.dataDir);
    if (problem) throw new Error(`LOCAL_SOURCE_ROOTS: ${problem}`);
  }

  let databaseUrl = config.databaseUrl;
  let postgresDataDir: string | undefined;
  if (!databaseUrl) {
    // Under the data folder, unless the OS user Postgres runs as cannot reach it (root: see there).
    postgresDataDir = await reachablePostgresDataDir(path.join(config.dataDir, 'postgres'));
    const pg = await startEmbeddedPostgres({
      dataDir: postgresDataDir,
      port: config.embeddedPostgresPort,
      log,
      logFile: path.join(config.dataDir, 'logs', 'postgres.log'),
    });
    stops.push({ name: 'postgres', stop: pg.stop });
    databaseUrl = pg.url;
  }
  await migrate(databaseUrl);

  let temporalAddress = config.temporal.address;
  let temporalUi: string | undefined;
  if (!temporalAddress) {
    const t = await startTemporalDevServer({
      dataDir: path.join(config.dataDir, 'temporal'),
      port: config.temporal.devPort,
      uiPort: config.temporal.devUiPort,
      namespace: config.temporal.namespace === 'default' ? undefined : config.temporal.namespace,
      log,
      logFile: path.join(config.dataDir, 'logs', 'temporal.log'),
    });
    stops.push({ name: 'temporal', stop: t.stop });
    temporalAddress = t.address;
    temporalUi = t.uiUrl;
  }

  const { db, sql, close } = createDb(databaseUrl, {
    max: workerPoolSize(config),
    lockTimeoutMs: config.run.lockTimeoutSeconds * 1000,
  });
  stops.push({ name: 'database pool', stop: close });
  const token = await developmentToken(db, config);

  const client = await connectClient(config.temporal, temporalAddress);
  stops.push({ name: 'temporal client', stop: () => client.connection.close() });

  const workerConnection = await connectWorker(config.temporal, temporalAddress);
  // Before this process's worker loads anything: what is there now was a killed worker's.
  await sweepScratch(log);
  const worker = await buildWorker({ config, sql, connection: workerConnection });
  const workerDone = worker.run();
  stops.push({
    name: 'worker',
    stop: async () => {
      worker.shutdown();
      await workerDone;
      await workerConnection.close();
    },
  });
  workerDone.catch((err: unknown) => {
    log.error({ err }, 'worker stopped');
    void shutdown('worker-failure');
  });

  await runStartupTasks({ sql, temporal: client, taskQueue: config.temporal.taskQueue, log });

  const app = createApp({
    ...serviceDepsFromConfig(config, { db, sql, temporal: client }),
    log,
    temporalUiUrl: config.temporal.uiUrl ?? temporalUi,
  });
  const server = serve({ fetch: app.fetch, hostname: config.api.host, port: config.api.port });
  stops.push({ name: 'api', stop: () => new Promise<void>((resolve) => server.close(() => resolve())) });

  printBanner(log, {
    api: `http://${config.api.host}:${config.api.port}`,
    temporalAddress,
    temporalUi,
    token,
    postgresDataDir,
    dataDir: config.dataDir,
  });
}

/**
 * The embedded stack's own settings where the environment names none: every part runs on
 * 127.0.0.1, so private endpoints are allowed; the key sealing stored secrets is created once in
 * the data folder (mode 0600) and kept, so secrets survive a restart.
 */
async function embeddedDefaults(env: NodeJS.ProcessEnv): Promise<NodeJS.ProcessEnv> {
  const dataDir = path.resolve(env.AUTOLOADER_DATA_DIR || '.autoloader');
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const out = { ...env };
  out.AUTOLOADER_ALLOW_PRIVATE_ENDPOINTS ||= 'true';
  if (!out.AUTOLOADER_SECRET_KEY) {
    const file = path.join(dataDir, 'secret-key');
    let key = await readFile(file, 'utf8').then(
      (s) => s.trim(),
      (err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return undefined;
        throw err;
      },
    );
    if (!key) {
      key = newSecretKey();
      await writeFile(file, `${key}\n`, { mode: 0o600, flag: 'wx' });
    }
    out.AUTOLOADER_SECRET_KEY = key;
  }
  return out;
}

/**
 * A development tenant and token, kept in the data folder so the same token works after a restart.
 * Skipped in production: real tokens are created deliberately.
 */
async function developmentToken(db: Db, config: Config): Promise<string | undefined> {
  if (config.env === 'production') return undefined;
  const file = path.join(config.dataDir, 'dev-token');
  const saved = await readFile(file, 'utf8').then(
    (s) => s.trim(),
    (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    },
  );
  // The development tenant reads the shipped samples and the folders the operator named; its
  // policy is set again at every start, so LOCAL_SOURCE_ROOTS changes take effect.
  await putTenant(
    { db, dataDir: config.dataDir },
    {
      id: 'dev',
      name: 'Development',
      policy: tenantPolicySchema.parse({ local_roots: [samplesRoot, ...config.localSourceRoots] }),
    },
  );
  if (saved && (await tokenExists(db, saved))) return saved;
  const { token } = await createToken(db, { tenantId: 'dev', name: 'development', subject: 'developer' });
  await writeFile(file, `${token}\n`, { mode: 0o600 });
  return token;
}

function printBanner(
  log: Logger,
  info: {
    api: string;
    temporalAddress: string;
    temporalUi?: string;
    token?: string;
    postgresDataDir: string | undefined;
    dataDir: string;
  },
) {
  // Relative to where npm start runs when inside it, absolute otherwise.
  const shown = (dir: string) => {
    const rel = path.relative(process.cwd(), dir);
    return rel === '' ? '.' : rel.startsWith('..') ? dir : rel;
  };
  const data = shown(info.dataDir);
  const lines = [
    '',
    'Autoloader is running',
    `  Console        ${info.api}/ui`,
    `  API            ${info.api}/api/v1`,
    `  API reference  ${info.api}/docs   (OpenAPI: ${info.api}/openapi.json)`,
    `  Temporal       ${info.temporalAddress}${info.temporalUi ? `   UI: ${info.temporalUi}` : ''}`,
    `  Postgres       ${info.postgresDataDir ? `embedded (data in ${shown(info.postgresDataDir)})` : 'DATABASE_URL'}`,
    `  Logs           ${data}/logs (the Temporal dev server's and Postgres' own output)`,
    info.token ? `  Dev token      ${info.token}` : '',
    info.token
      ? `\n  For the CLI (npx autoloader --help) and curl:\n  export AUTOLOADER_URL=${info.api} AUTOLOADER_TOKEN=${info.token}`
      : '',
    '  Ctrl-C stops everything.',
    '',
  ];
  // The banner is for the person at the terminal; structured logs go to the logger as usual.
  process.stdout.write(`${lines.filter((l) => l !== '').join('\n')}\n`);
  log.info({ api: info.api, temporal: info.temporalAddress }, 'started');
}

main().catch((err: unknown) => {
  const log = createLogger('error');
  log.fatal({ err }, 'failed to start');
  process.exit(1);
});
