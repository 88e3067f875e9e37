import { isUtf8 } from 'node:buffer';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import postgres from 'postgres';
import type { CsvOptions, DeclaredColumn, FileFormat, SchemaMode } from '../domain/schemas.js';
import {
  destinationColumns,
  destinationColumnsWithProbe,
  ensureColumns,
  noChange,
  widenColumns,
} from './columns.js';
import { type AddedColumn, type LoadTarget, ReconciliationError } from './common.js';
import { convertToJsonLines } from './duckdb-convert.js';
import { insertFromStage } from './insert.js';
import {
  readHead,
  type Staged,
  smallFileBytes,
  stageCsv,
  stageJsonLines,
  stageSmallJsonLines,
} from './stage.js';

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
  complete?: (
    facts: { columns: Map<string, string>; bytesRead: number; recordsSql: string },
    /** The transaction (or savepoint) to build the statement with. */
    tx: postgres.TransactionSql,
  ) => Promise<{ statement: postgres.PendingQuery<postgres.Row[]> }>;
}

export interface LoadFileResult {
  records: number;
  bytesRead: number;
  columnsAdded: AddedColumn[];
  /** The destination's columns (name → SQL type) this file was loaded with. */
  columns: Map<string, string>;
}

/**
 * Loads one file into its destination inside the caller's transaction: bytes are streamed unparsed
 * into a temporary staging table with COPY (Postgres parses JSON and CSV itself, so memory does not
 * grow with the file; a small file is staged by one INSERT), new fields' types are inferred from the
 * staged rows (widened over the whole file if a later row does not fit), missing columns are added,
 * the file's earlier rows are deleted by lineage and the new rows inserted. Committing the caller's
 * transaction makes the file's rows and its state change atomic.
 */
export async function loadInTransaction(
  tx: postgres.TransactionSql,
  input: LoadFileInput,
): Promise<LoadFileResult> {
  let bytesRead = 0;
  async function* counted(body: Readable) {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      bytesRead += chunk.length;
      yield chunk;
    }
  }
  const raw = Readable.from(counted(input.body), { objectMode: false });
  const decoded: Readable = input.gzip ? raw.pipe(createGunzip()) : raw;
  const lines =
    input.format === 'json' || input.format === 'parquet'
      ? Readable.from(convertToJsonLines(input.format, decoded), { objectMode: false })
      : decoded;
  const head = await readHead(lines, smallFileBytes);

  let staged: Staged;
  let existing: Map<string, string> | undefined;
  if (input.format !== 'csv' && head.whole && isUtf8(head.whole)) {
    // A small file: staged by one INSERT, sent together with the catalog read and the probe for
    // unknown keys (one round trip).
    const staging = stageSmallJsonLines(tx, head.whole, head.firstLine);
    const probing = destinationColumnsWithProbe(tx, input.target, input.declaredColumns ?? []);
    // Both go out at once; if staging fails, the probe fails with it (the transaction is aborted),
    // and the staging error — which names the file's line — is the one to report.
    probing.catch(() => undefined);
    staged = await staging;
    let unknownKeys: boolean | undefined;
    ({ columns: existing, unknownKeys } = await probing);
    if (staged.kind === 'json') staged.unknownKeys = unknownKeys;
  } else {
    staged =
      input.format === 'csv'
        ? await stageCsv(tx, head.stream(), head, input.csv, input.declaredColumns ?? [])
        : await stageJsonLines(tx, head.stream(), head.firstLine);
    existing = await destinationColumns(tx, input.target);
  }
  const declared = input.declaredColumns ?? [];
  const columnsAdded = await ensureColumns(
    tx,
    input.target,
    existing,
    staged,
    input.schemaMode,
    declared,
    input.ddl,
  );
  // Read the columns again only when they may have changed: this file, or one it waited for, added some.
  let columns =
    (columnsAdded === noChange ? existing : await destinationColumns(tx, input.target)) ??
    new Map<string, string>();

  const where = staged.kind === 'json' ? 'WHERE doc IS NOT NULL' : '';
  const load = async (q: postgres.TransactionSql) => {
    const completion = await input.complete?.(
      { columns, bytesRead, recordsSql: `(SELECT count(*) FROM ${staged.table} ${where})` },
      q,
    );
    const records = await insertFromStage(q, input, staged, columns, completion?.statement);
    // Every record we counted in the file is a row in the table, or the file fails (and its
    // transaction, state change included, rolls back).
    if (records !== staged.records) throw new ReconciliationError(staged.records, records);
    return records;
  };
  const sampled = columnsAdded.filter((c) => c.sampled);
  if (sampled.length === 0) return { records: await load(tx), bytesRead, columnsAdded, columns };

  // This file's new columns were typed from its first rows. If a later value does not fit, the
  // types are inferred again over the whole file, the columns widened, and the load repeated. (A
  // postgres.js savepoint: a failed statement in the transaction itself would doom it.)
  try {
    const records = await tx.savepoint((sp) => load(sp));
    return { records, bytesRead, columnsAdded, columns };
  } catch (err) {
    if (!(err instanceof postgres.PostgresError && err.code.startsWith('22'))) throw err;
    const widened = await widenColumns(tx, input.target, staged, sampled);
    if (widened.length === 0) throw err;
    columns = (await destinationColumns(tx, input.target)) ?? columns;
    const added = columnsAdded.map((c) => widened.find((w) => w.name === c.name) ?? c);
    return { records: await load(tx), bytesRead, columnsAdded: added, columns };
  }
}
