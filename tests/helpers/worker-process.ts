/**
 * Entry point of a worker that runs in a CHILD process, so that tests can kill it for real
 * (SIGKILL leaves no chance to drain, report or clean up — exactly like a crashed host).
 *
 * It builds the worker the way src/main.ts does: runtime logger first, then the native connection,
 * the database pools, the store factory and `createWorker` with the same activity dependencies.
 * Configuration comes from the environment, validated by `loadConfig` like production:
 *   DATABASE_URL, TEMPORAL_ADDRESS, TEMPORAL_TASK_QUEUE (plus the usual optional variables), and
 *   AUTOLOADER_TEST_WORKFLOW_BUNDLE  a pre-built workflow bundle (tests build one per run; bundling
 *                                    with webpack in every restarted worker would cost seconds).
 *
 * Started with `node --import tsx tests/helpers/worker-process.ts` by spawnWorkerProcess (see
 * spawn-worker.ts), which talks to it over an IPC channel: the child reports `ready` once the
 * worker polls and exits by itself when the channel closes, so a test runner that dies does not
 * leave workers behind.
 */

import { loadConfig } from '../../src/config.js';
import { createDb } from '../../src/db/client.js';
import { createLogger } from '../../src/lib/logger.js';

import { connectWorker } from '../../src/temporal/connect.js';
import {
  createWorker,
  installRuntimeLogger,
  workerDepsFromConfig,
  workerPoolSize,
} from '../../src/worker.js';

/** Messages the child sends to its parent over IPC. */
export type WorkerProcessMessage = { type: 'ready'; pid: number; taskQueue: string };

async function main(): Promise<void> {
  const config = loadConfig();
  const log = createLogger(config.logLevel, 'worker-process');
  const databaseUrl = config.databaseUrl;
  const temporalAddress = config.temporal.address;
  // Unlike main.ts this process never starts services of its own: the test owns them.
  if (!databaseUrl || !temporalAddress) throw new Error('DATABASE_URL and TEMPORAL_ADDRESS are required');
  installRuntimeLogger(log);

  const { sql, close: closeDb } = createDb(databaseUrl, { max: workerPoolSize(config) });
  const connection = await connectWorker(config.temporal, temporalAddress);
  const bundlePath = process.env.AUTOLOADER_TEST_WORKFLOW_BUNDLE;
  const worker = await createWorker({
    ...workerDepsFromConfig(config, sql, connection),
    ...(bundlePath ? { workflowBundle: { codePath: bundlePath } } : {}),
  });

  let stopping = false;
  const stop = (reason: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ reason }, 'worker process stopping');
    worker.shutdown();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  // The parent (the test) is gone: nobody will ever stop this worker otherwise.
  process.on('disconnect', () => stop('parent disconnected'));

  const running = worker.run();
  process.send?.({
    type: 'ready',
    pid: process.pid,
    taskQueue: config.temporal.taskQueue,
  } satisfies WorkerProcessMessage);
  try {
    await running;
  } finally {
    await connection.close();
    await closeDb();
  }
  log.info('worker process stopped');
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    // The parent reads this from the captured stderr when the worker dies unexpectedly.
    process.stderr.write(
      `worker process failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exit(1);
  },
);
