import type { Client } from '@temporalio/client';
import type { Config } from '../config.js';
import type { Db, Sql } from '../db/client.js';
import { type SourceContexts, sourceContexts } from '../sources/index.js';
import type { CostModel } from './impact.js';
import type { ScheduleFloors } from './schedule-rules.js';

export interface RunDefaults {
  parallelism: number;
  batchMaxFiles: number;
  batchMaxBytes: number;
}

export interface RefreshSettings extends CostModel {
  largeOperationUsd: number;
  rateLimitPerHour: number;
  responseWaitMs: number;
  swapGraceSeconds: number;
  /** Ingestions of a batch refresh refreshed at once (BATCH_REFRESH_PARALLELISM). */
  batchParallelism: number;
  /** Tables of one connection a data refresh refreshes at once (CONNECTION_REFRESH_PARALLELISM). */
  connectionParallelism: number;
  /** How long a swap whose checks failed waits for approval (REFRESH_APPROVAL_TIMEOUT_SECONDS). */
  approvalTimeoutSeconds: number;
}

/** What the use cases need: the state database, Temporal, and the settings requests run with. */
export interface ServiceDeps {
  db: Db;
  sql: Sql;
  temporal: Client;
  taskQueue: string;
  runDefaults: RunDefaults;
  refresh: RefreshSettings;
  /** Each tenant's rules for its connections (policy, credential references, address policy). */
  sources: SourceContexts;
  /** Seals secrets stored through the API (AUTOLOADER_SECRET_KEY); unset: storing them is refused. */
  secretKey: Buffer | undefined;
  /** The service's data directory: never part of a tenant's folders. */
  dataDir: string;
  schedules: ScheduleFloors;
  metrics: { token: string | undefined; cacheSeconds: number };
}

/** The use cases' dependencies for a deployment: settings from the environment, shared clients given. */
export function serviceDepsFromConfig(
  config: Config,
  clients: { db: Db; sql: Sql; temporal: Client },
): ServiceDeps {
  return {
    ...clients,
    taskQueue: config.temporal.taskQueue,
    runDefaults: {
      parallelism: config.run.fileParallelism,
      batchMaxFiles: config.run.batchMaxFiles,
      batchMaxBytes: config.run.batchMaxBytes,
    },
    refresh: config.refresh,
    sources: sourceContexts({
      sql: clients.sql,
      secretKey: config.secretKey,
      env: process.env,
      address: config.address,
    }),
    secretKey: config.secretKey,
    dataDir: config.dataDir,
    schedules: config.schedules,
    metrics: config.metrics,
  };
}
