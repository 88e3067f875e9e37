import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
/**
 * `npm run worker`: one worker process, against TEMPORAL_ADDRESS and DATABASE_URL. Start as many as
 * the load needs, on as many machines, on the same task queue: Temporal spreads activities over
 * them. SIGTERM (or SIGINT) drains it: it stops polling and finishes or hands back what it holds.
 *
 * Started with an IPC channel (the tests and the bench start it as a child process), it reports
 * `{type: 'ready'}` once it polls, stops on `{type: 'stop'}` or when the channel closes (the parent
 * is gone), and reports `{type: 'stopped'}`. AUTOLOADER_WORKFLOW_BUNDLE names a pre-built workflow
 * bundle (skips bundling at start).
 */
import { loadConfig } from '../config.js';
import { createDb } from '../db/client.js';
import { migrate } from '../db/migrate.js';
import { surviveConnectionLoss } from '../lib/connection-loss.js';
import { createLogger } from '../lib/logger.js';
import { sweepScratch } from '../lib/scratch.js';
import { runStartupTasks } from '../startup.js';
import { connectClient, connectWorker } from '../temporal/connect.js';
import { ensureSearchAttributes } from '../temporal/search-attributes.js';
import { buildWorker, installRuntimeLogger, workerPoolSize } from '../worker.js';

export type WorkerProcessMessage = { type: 'ready'; pid: number; taskQueue: string } | { type: 'stopped' };
export type WorkerParentMessage = { type: 'stop' };

async function main(): Promise<void> {
  const config = loadConfig();
  const log = createLogger(config.logLevel, 'worker', config.logFormat);
  const databaseUrl = config.databaseUrl;
  const temporalAddress = config.temporal.address;
  if (!databaseUrl || !temporalAddress) {
    throw new Error(
      'npm run worker needs DATABASE_URL and TEMPORAL_ADDRESS (npm start runs everything embedded instead)',
    );
  }
  installRuntimeLogger(log);
  surviveConnectionLoss(log);
  // Before any load of this process makes its own: what is there now was a killed worker's.
  await sweepScratch(log);
  await migrate(databaseUrl);

  const { sql, close: closeDb } = createDb(databaseUrl, {
    max: workerPoolSize(config),
    applicationName: 'autoloader-worker',
    lockTimeoutMs: config.run.lockTimeoutSeconds * 1000,
  });
  const connection = await connectWorker(config.temporal, temporalAddress);
  const client = await connectClient(config.temporal, temporalAddress);
  // Its workflows start children with them: a worker may be the first process on a new namespace.
  await ensureSearchAttributes(client.connection, config.temporal.namespace);
  const worker = await buildWorker({
    config,
    sql,
    connection,
    workflowBundlePath: process.env.AUTOLOADER_WORKFLOW_BUNDLE || builtBundle(),
  });

  let stopping = false;
  const stop = (reason: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ reason }, 'worker stopping');
    worker.shutdown();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('message', (m: WorkerParentMessage) => {
    if (m.type === 'stop') stop('asked by parent');
  });
  // The parent is gone: nobody would ever stop this worker otherwise.
  process.on('disconnect', () => stop('parent disconnected'));

  const running = worker.run();
  await runStartupTasks({ sql, temporal: client, taskQueue: config.temporal.taskQueue, log });
  process.send?.({
    type: 'ready',
    pid: process.pid,
    taskQueue: config.temporal.taskQueue,
  } satisfies WorkerProcessMessage);
  log.info({ taskQueue: config.temporal.taskQueue, temporal: temporalAddress }, 'worker polling');
  try {
    await running;
  } finally {
    await client.connection.close();
    await connection.close();
    await closeDb();
  }
  log.info('worker stopped');
  process.send?.({ type: 'stopped' } satisfies WorkerProcessMessage);
}

main().then(
  () => {
    process.disconnect?.();
    process.exit(0);
  },
  (err: unknown) => {
    createLogger('error', 'worker').fatal({ err }, 'worker failed');
    process.exit(1);
  },
);

/**
 * The bundle `npm run build` writes beside the compiled worker (dist/workflow-bundle.js): loaded
 * as it is, instead of bundling the workflows at every start. Run from source (tsx) there is none.
 */
function builtBundle(): string | undefined {
  const path = fileURLToPath(new URL('../workflow-bundle.js', import.meta.url));
  return existsSync(path) ? path : undefined;
}
