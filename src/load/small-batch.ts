import { Readable } from 'node:stream';
import type postgres from 'postgres';
import { byLineageIndex } from '../destination/table.js';
import { successUpdate } from '../ledger/processed-files.js';
import type { LoadTarget } from './common.js';
import { copyFrom } from './copy.js';
import { directColumns, directCopyColumnList, lineageCopySuffix } from './direct.js';
import { jsonLinesAsCopyText, NeedsStaging } from './json-copy-text.js';
import { qualified } from './sql-text.js';

/**
 * Small JSON-lines files of one batch loaded by ONE COPY into the destination's typed columns, in
 * the caller's transaction: every file keeps its own ledger row and SUCCESS, committed with its
 * rows. Per row this is the direct path's cost (Postgres parses each value once, as for `\copy`),
 * not the one-statement path's (each line parsed into jsonb, then every field cast out of it).
 *
 * The steps: the files' ledger rows are locked in id order (two attempts at the same files wait
 * for each other, never deadlock); each file is converted on our side (json-copy-text.ts: a file
 * it cannot promise the same values for is left out, to load alone); one statement marks the
 * files that are still being loaded in a running run SUCCESS with their counted records, and
 * deletes those files' earlier rows and rejected rows; then one COPY sends the rows of exactly
 * those files, and COPY's count must equal the records counted, or nothing commits.
 */
export interface BatchFile {
  fileId: number;
  sourceUri: string;
  runId: string;
  etag: string | null;
  content: Buffer;
  startedAt: number;
}

export type BatchFileOutcome =
  | { kind: 'loaded'; records: number }
  /** Another attempt committed this version of the file first, or the run ended: nothing changed. */
  | { kind: 'already-loaded' }
  /** Not loaded here (see `reason`): the caller loads it alone. */
  | { kind: 'alone'; reason: string };

/** COPY took a different number of rows than the files have records: the transaction must roll back. */
export class BatchReconciliationError extends Error {
  override name = 'BatchReconciliationError';
}

/**
 * Loads `files` (sorted by fileId: the lock order) into `target` in `tx`. `columns`: the table's
 * columns, which the files' schema version `schemaVersion` describes.
 */
export async function copySmallFiles(
  tx: postgres.TransactionSql,
  target: LoadTarget,
  columns: Map<string, string>,
  schemaVersion: number,
  files: BatchFile[],
): Promise<BatchFileOutcome[]> {
  const plan = directColumns(columns);
  const out: BatchFileOutcome[] = files.map(() => ({ kind: 'already-loaded' }));
  if (plan.names.length === 0) return files.map(() => ({ kind: 'alone', reason: 'no columns yet' }));

  await tx.unsafe(
    'select 1 from autoloader.processed_files where id = any($1::bigint[]) order by id for update',
    [files.map((f) => f.fileId)],
    { prepare: true },
  );

  // Each file's rows as COPY text, with the lineage values COPY sends (lineageCopySuffix).
  const converted = new Map<number, { rows: Buffer[]; records: number }>();
  for (const [i, file] of files.entries()) {
    const suffix = lineageCopySuffix(file.sourceUri, file.runId);
    const count = { records: 0 };
    const rows: Buffer[] = [];
    try {
      for await (const piece of jsonLinesAsCopyText([file.content], plan, suffix, count)) rows.push(piece);
    } catch (err) {
      if (!(err instanceof NeedsStaging)) throw err;
      out[i] = { kind: 'alone', reason: err.message };
      continue;
    }
    converted.set(i, { rows, records: count.records });
  }
  if (converted.size === 0) return out;

  const values = [...converted].map(([i, c]) => {
    const file = files[i]!;
    return {
      f_id: file.fileId,
      f_etag: file.etag,
      f_bytes: file.content.length,
      f_ms: Date.now() - file.startedAt,
      f_records: c.records,
      f_source: file.sourceUri,
    };
  });
  const table = qualified(target.schema, target.table);
  const statement = tx.unsafe<{ id: number }[]>(
    `WITH v AS (
       SELECT * FROM jsonb_to_recordset($1::text::jsonb)
         AS v(f_id bigint, f_etag text, f_bytes bigint, f_ms bigint, f_records bigint, f_source text)
     ), claim AS (
       ${successUpdate({
         fileId: 'v.f_id',
         runId: '$2',
         etag: 'v.f_etag',
         schemaVersion: '$3',
         bytesRead: 'v.f_bytes',
         durationMs: 'v.f_ms',
         records: 'v.f_records',
         rowsRejected: '0',
         from: 'v',
       })}
         -- Only over a file that is still being loaded (another attempt may have committed it).
         AND status = 'PROCESSING'
       RETURNING id, v.f_source
     ), cleared AS (
       -- Rows an earlier load of a file rejected (under on_error: skip_rows) go with its rows.
       DELETE FROM autoloader.rejected_rows WHERE file_id IN (SELECT id FROM claim)
     ), earlier AS (
       DELETE FROM ${table} WHERE _source_file IN (SELECT f_source FROM claim)
     )
     SELECT id::float8 AS id FROM claim`,
    [JSON.stringify(values), files[0]!.runId, schemaVersion],
    { prepare: true },
  );
  const [, claimed] = await Promise.all(byLineageIndex(tx, statement));

  const ids = new Set(claimed.map((r) => r.id));

  const rows: Buffer[] = [];
  let expected = 0;
  for (const [i, c] of converted) {
    if (!ids.has(files[i]!.fileId)) continue;
    rows.push(...c.rows);
    expected += c.records;
    out[i] = { kind: 'loaded', records: c.records };
  }
  if (rows.length > 0) {
    const { rows: copied } = await copyFrom(
      tx,
      `COPY ${table} (${directCopyColumnList(plan.names)}) FROM STDIN`,
      Readable.from(rows, { objectMode: false }),
    );
    // Rows the table did not take (a trigger, a rule): nothing commits, each file loads alone and
    // its own reconciliation says which.
    if (copied !== expected)
      throw new BatchReconciliationError(`the files have ${expected} records but ${copied} were loaded`);
  }
  return out;
}
