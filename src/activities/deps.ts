import type { Config } from '../config.js';
import type { Sql } from '../db/client.js';
import type { SourceContexts, StoreFactory } from '../sources/index.js';

export interface ActivityDeps {
  sql: Sql;
  stores: StoreFactory;
  /** Each tenant's rules for its connections (the connection test reads them directly). */
  sources: SourceContexts;
  /** A FAILED file (unknown reason) is queued again by later runs until it has failed this many times. */
  fileMaxRetries: number;
  /** Attempts within a run at a file that keeps failing for an unknown reason, before it fails. */
  fileMaxAttempts: number;
  /** Small files loaded in one transaction (LOAD_SMALL_FILES_PER_TRANSACTION). */
  smallFilesPerTransaction: number;
  /** Large JSON-lines files straight into their columns by one COPY (LOAD_DIRECT_COPY). */
  directCopy: boolean;
  /** Cost model, limits and grace period (scheduled full refreshes follow them too). */
  refresh: Config['refresh'];
  /** Delivery deadline and first retry delay of notification webhooks. */
  webhooks: Config['webhooks'];
}
