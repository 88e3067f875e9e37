import type { Sql } from '../db/client.js';
import type { SourceContexts, StoreFactory } from '../sources/index.js';

export interface ActivityDeps {
  sql: Sql;
  stores: StoreFactory;
  /** Each tenant's rules for its connections (the connection test reads them directly). */
  sources: SourceContexts;
  /** A FAILED file is queued again by later runs until it has failed this many times. */
  fileMaxRetries: number;
}
