import type { Client } from '@temporalio/client';
import type { Db, Sql } from '../db/client.js';
import type { CostModel } from './impact.js';

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
}

/** What the use cases need: the state database, Temporal, and the settings requests run with. */
export interface ServiceDeps {
  db: Db;
  sql: Sql;
  temporal: Client;
  taskQueue: string;
  runDefaults: RunDefaults;
  localSourceRoots: string[];
  refresh: RefreshSettings;
}
