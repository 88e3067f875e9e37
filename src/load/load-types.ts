import type { Readable } from 'node:stream';
import type postgres from 'postgres';
import type { CsvOptions, DeclaredColumn, FileFormat, SchemaMode } from '../domain/schemas.js';
import type { AddedColumn, LoadTarget } from './common.js';
import type { Completion } from './insert.js';
import type { RowErrorPolicy } from './row-errors.js';

/** What loadInTransaction (load-file.ts) takes and gives; apart, so the paths it picks can name them too. */

export interface LoadFileInput {
  target: LoadTarget;
  /** Full URI of the file: the `_source_file` of every row it contributes. */
  sourceUri: string;
  runId: string;
  format: FileFormat;
  csv: CsvOptions;
  gzip: boolean;
  body: Readable;
  schemaMode: SchemaMode;
  /** The ingestion's explicit schema, if it has one. */
  declaredColumns?: DeclaredColumn[];
  /** What a row that cannot load does: fail the file (the default) or become a rejected row. */
  rowErrors?: RowErrorPolicy;
  /** Called with the size of each chunk read from the source. */
  onProgress?: (bytes: number) => void;
  /**
   * A pool for creating a new destination table outside the file's transaction (see ensureColumns).
   * It takes a second connection while the file's transaction holds one: pools that run activities
   * are sized above the activity concurrency (workerPoolSize). Without it, the table is created
   * inside the file's transaction.
   */
  ddl?: postgres.Sql;
  /**
   * Builds a statement sent together with the file's DELETE and INSERT (the caller's state change),
   * given the columns the file is loaded with and a SQL expression counting its records. If that
   * statement changes no row, loadFile throws NotCompleted and the caller's transaction rolls back.
   * Returned wrapped: a bare postgres.js query would be executed by being awaited.
   */
  /**
   * Locks the file's state row (the lock the completion takes first): with it and `complete`, a
   * large JSON-lines file whose keys the table has loads by one COPY straight into its columns.
   */
  lockFile?: (tx: postgres.TransactionSql) => postgres.PendingQuery<postgres.Row[]>;
  /** Whether large JSON-lines files may load by the direct path (LOAD_DIRECT_COPY, default true). */
  directCopy?: boolean;
  /** The direct path's bound on its local copy of the file (tests set it small; see direct.ts). */
  directSpillMaxBytes?: number;
  complete?: (
    facts: {
      columns: Map<string, string>;
      bytesRead: number;
      recordsSql: string;
      /** Columns this file added under another name than its field's (column → field). */
      sourceNames: Map<string, string>;
      /** Rows set aside under on_error: skip_rows (kept by the caller with keepRejected). */
      rowsRejected: number;
    },
    /** The transaction (or savepoint) to build the statement with. */
    tx: postgres.TransactionSql,
  ) => Promise<Completion>;
}

export interface LoadFileResult {
  /** Rows loaded. */
  records: number;
  /** Rows rejected (on_error: skip_rows); they are in the rejected stage until the commit. */
  rowsRejected: number;
  bytesRead: number;
  columnsAdded: AddedColumn[];
  /** The destination's columns (name → SQL type) this file was loaded with. */
  columns: Map<string, string>;
  /** How the rows went in: one COPY into the table's columns, or through the staging table. */
  path: 'direct' | 'staged';
  /** Why a file the direct path tried was loaded the staged way. */
  stagedBecause?: string;
}
