import type { Sql } from '../db/client.js';
import type { StoreFactory } from '../sources/index.js';

export interface ActivityDeps {
  sql: Sql;
  stores: StoreFactory;
  /** A FAILED file is queued again by later runs until it has failed this many times. */
  fileMaxRetries: number;
}
