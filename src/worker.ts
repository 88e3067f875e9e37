import { fileURLToPath } from 'node:url';
import { type NativeConnection, Runtime, Worker, type WorkerOptions } from '@temporalio/worker';
import { type ActivityDeps, createActivities } from './activities/index.js';
import type { Config } from './config.js';
import type { Sql } from './db/client.js';
import { createStoreFactory } from './storage/index.js';

export const workflowsPath = fileURLToPath(new URL('./workflows/index.ts', import.meta.url));

export interface WorkerDeps {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  activityDeps: ActivityDeps;
  maxConcurrentActivities: number;
  /** A pre-built bundle (tests build one per test run); otherwise the worker bundles at start. */
  workflowBundle?: WorkerOptions['workflowBundle'];
}

/**
 * Connections for a pool that runs activities: one per activity in flight, one more each for a new
 * table's short DDL transaction (taken while the file's transaction holds its own), and a few for
 * bookkeeping and the API.
 */
export function workerPoolSize(config: Config): number {
  return Math.max(10, config.worker.maxConcurrentActivities + 4);
}

/** The worker a deployment runs: settings from the environment, one pool, the real stores. */
export function workerDepsFromConfig(config: Config, sql: Sql, connection: NativeConnection): WorkerDeps {
  return {
    connection,
    namespace: config.temporal.namespace,
    taskQueue: config.temporal.taskQueue,
    activityDeps: {
      sql,
      stores: createStoreFactory({ localSourceRoots: config.localSourceRoots }),
      fileMaxRetries: config.run.fileMaxRetries,
    },
    maxConcurrentActivities: config.worker.maxConcurrentActivities,
  };
}

export async function createWorker(deps: WorkerDeps): Promise<Worker> {
  return Worker.create({
    connection: deps.connection,
    namespace: deps.namespace,
    taskQueue: deps.taskQueue,
    activities: createActivities(deps.activityDeps),
    ...(deps.workflowBundle ? { workflowBundle: deps.workflowBundle } : { workflowsPath }),
    maxConcurrentActivityTaskExecutions: deps.maxConcurrentActivities,
    // Workflows here are thin orchestrators; activities do the heavy lifting.
    maxConcurrentWorkflowTaskExecutions: 20,
  });
}

/** Temporal's native runtime logs through our logger instead of its default console output. */
export function installRuntimeLogger(logger: {
  info(o: object, m: string): void;
  warn(o: object, m: string): void;
}) {
  Runtime.install({
    // Signals are handled by the process (main.ts), which shuts components down in order.
    shutdownSignals: [],
    logger: {
      log: (level, message, meta) =>
        (level === 'WARN' || level === 'ERROR' ? logger.warn : logger.info)(meta ?? {}, message),
      trace: () => undefined,
      debug: () => undefined,
      info: (message, meta) => logger.info(meta ?? {}, message),
      warn: (message, meta) => logger.warn(meta ?? {}, message),
      error: (message, meta) => logger.warn(meta ?? {}, message),
    },
  });
}
