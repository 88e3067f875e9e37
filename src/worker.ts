import { fileURLToPath } from 'node:url';
import { type NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { type ActivityDeps, createActivities } from './activities/index.js';
import type { Config } from './config.js';
import type { Sql } from './db/client.js';
import { createStoreFactory, sourceContexts } from './sources/index.js';

/** The workflows' entry point, as source (tsx) or compiled (dist/, when no bundle is given). */
export const workflowsPath = fileURLToPath(
  new URL(`./workflows/index.${import.meta.url.endsWith('.ts') ? 'ts' : 'js'}`, import.meta.url),
);

export interface WorkerOptions {
  config: Config;
  /** The pool activities run on (sized by workerPoolSize). */
  sql: Sql;
  connection: NativeConnection;
  /** Overrides config.temporal.taskQueue (tests run one queue per file). */
  taskQueue?: string;
  /** A pre-built workflow bundle (tests and the bench build one per run); otherwise bundled at start. */
  workflowBundlePath?: string;
}

/**
 * Connections for a pool that runs activities: one per activity in flight, one more each for a new
 * table's short DDL transaction (taken while the file's transaction holds its own), and a few for
 * bookkeeping and the API.
 */
export function workerPoolSize(config: Config): number {
  return Math.max(10, config.worker.maxConcurrentActivities + 4);
}

export function activityDepsFromConfig(config: Config, sql: Sql): ActivityDeps {
  const sources = sourceContexts({
    sql,
    secretKey: config.secretKey,
    env: process.env,
    address: config.address,
  });
  return {
    sql,
    sources,
    stores: createStoreFactory(sources),
    fileMaxRetries: config.run.fileMaxRetries,
    fileMaxAttempts: config.run.fileMaxAttempts,
    smallFilesPerTransaction: config.run.smallFilesPerTransaction,
    directCopy: config.run.directCopy,
    refresh: config.refresh,
    webhooks: config.webhooks,
  };
}

/**
 * The one way a worker is built: `npm start`, `npm run worker`, the tests and the bench all call
 * this, so what they run is what production runs.
 */
export async function buildWorker(opts: WorkerOptions): Promise<Worker> {
  const { config } = opts;
  return Worker.create({
    connection: opts.connection,
    namespace: config.temporal.namespace,
    taskQueue: opts.taskQueue ?? config.temporal.taskQueue,
    activities: createActivities(activityDepsFromConfig(config, opts.sql)),
    ...(opts.workflowBundlePath
      ? { workflowBundle: { codePath: opts.workflowBundlePath } }
      : { workflowsPath }),
    maxConcurrentActivityTaskExecutions: config.worker.maxConcurrentActivities,
    // Shutting down (SIGTERM, a deploy): activities get a few seconds, then are cancelled — a file
    // in flight rolls back — and the server hands their work to another worker at once.
    shutdownGraceTime: '5 seconds',
    // Workflows here are thin orchestrators; activities do the heavy lifting.
    maxConcurrentWorkflowTaskExecutions: 20,
  });
}

/** Temporal's native runtime logs through our logger instead of its default console output. */
export function installRuntimeLogger(logger: {
  debug(o: object, m: string): void;
  info(o: object, m: string): void;
  warn(o: object, m: string): void;
}) {
  // The workflow bundler logs webpack's whole module report at INFO: a screenful on every start.
  const bundlerReport = (message: string) => message.includes('\n') && message.includes('webpack');
  const info = (message: string, meta?: object) =>
    bundlerReport(message) ? logger.debug(meta ?? {}, message) : logger.info(meta ?? {}, message);
  Runtime.install({
    // Signals are handled by the process (main.ts), which shuts components down in order.
    shutdownSignals: [],
    logger: {
      log: (level, message, meta) =>
        level === 'WARN' || level === 'ERROR' ? logger.warn(meta ?? {}, message) : info(message, meta),
      trace: () => undefined,
      debug: () => undefined,
      info,
      warn: (message, meta) => logger.warn(meta ?? {}, message),
      error: (message, meta) => logger.warn(meta ?? {}, message),
    },
  });
}
