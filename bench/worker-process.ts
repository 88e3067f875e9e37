/**
 * The bench's worker, in a process of its own so that its memory can be read from /proc. It is
 * assembled exactly as src/main.ts assembles the production worker (config from the environment,
 * createDb, workerDepsFromConfig, createWorker → createActivities); the only difference is a
 * pre-built workflow bundle (BENCH_WORKFLOW_BUNDLE), as the test harness uses.
 *
 * Protocol with the parent (IPC channel): sends {type: 'ready'} once the worker polls; stops
 * gracefully on {type: 'stop'} and exits 0.
 */
import { loadConfig } from '../src/config.js';
import { createDb } from '../src/db/client.js';
import { createLogger } from '../src/lib/logger.js';
import { connectWorker } from '../src/temporal/connect.js';
import { createWorker, installRuntimeLogger, workerDepsFromConfig, workerPoolSize } from '../src/worker.js';

export type ParentMessage = { type: 'stop' };
export type ChildMessage = { type: 'ready' } | { type: 'stopped' };

async function main() {
  const config = loadConfig();
  const log = createLogger(config.logLevel, 'bench-worker');
  installRuntimeLogger(log);
  const databaseUrl = config.databaseUrl;
  const temporalAddress = config.temporal.address;
  const bundle = process.env.BENCH_WORKFLOW_BUNDLE;
  if (!databaseUrl || !temporalAddress || !bundle || !process.send) {
    throw new Error(
      'worker-process is started by bench/run.ts: it needs DATABASE_URL, TEMPORAL_ADDRESS, BENCH_WORKFLOW_BUNDLE and an IPC channel',
    );
  }
  const send = (m: ChildMessage) => process.send?.(m);

  const { sql, close } = createDb(databaseUrl, { max: workerPoolSize(config) });
  const connection = await connectWorker(config.temporal, temporalAddress);
  const worker = await createWorker({
    ...workerDepsFromConfig(config, sql, connection),
    workflowBundle: { codePath: bundle },
  });
  const running = worker.run();

  process.on('message', (m: ParentMessage) => {
    if (m.type === 'stop') worker.shutdown();
  });
  // The parent going away (Ctrl-C, crash) closes the channel: stop rather than linger as an orphan.
  process.on('disconnect', () => {
    if (worker.getState() === 'RUNNING') worker.shutdown();
  });

  send({ type: 'ready' });
  await running;
  await connection.close();
  await close();
  send({ type: 'stopped' });
  process.disconnect?.();
}

main().catch((err: unknown) => {
  createLogger('error', 'bench-worker').fatal({ err }, 'bench worker failed');
  process.exit(1);
});
