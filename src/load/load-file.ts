import { isUtf8 } from 'node:buffer';
import { pipeline, Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import postgres from 'postgres';
import {
  destinationColumns,
  destinationColumnsWithProbe,
  ensureColumns,
  noChange,
  widenColumns,
} from './columns.js';
import { FileDataError, ReconciliationError } from './common.js';
import { loadDirect } from './direct.js';
import { convertToJsonLines } from './duckdb-convert.js';
import { insertFromStage, rejectUnfitRows } from './insert.js';
import type { LoadFileInput, LoadFileResult } from './load-types.js';
import { enforceLimits } from './row-errors.js';
import {
  type Head,
  jsonStage,
  readHead,
  type Staged,
  smallFileBytes,
  stageCsv,
  stageJsonLines,
  stageJsonLinesRejecting,
  stageSmallJsonLines,
} from './stage.js';

export type { LoadFileInput, LoadFileResult };

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
      input.onProgress?.(chunk.length);
      yield chunk;
    }
  }
  const raw = Readable.from(counted(input.body), { objectMode: false });
  // pipeline, not pipe: a source failing part-way (a reset connection, an unreadable file) destroys
  // every stream and reaches the reader as an error, instead of an unhandled 'error' event that
  // would end the process.
  const decoded: Readable = input.gzip ? pipeline(raw, createGunzip(), ignoreHere) : raw;
  const lines =
    input.format === 'json' || input.format === 'parquet'
      ? Readable.from(convertToJsonLines(input.format, decoded), { objectMode: false })
      : decoded;
  let cleanupDirect: (() => Promise<void>) | undefined;
  try {
    let head = await readHead(lines, smallFileBytes);
    let stagedBecause: string | undefined;
    const skipping = input.rowErrors?.mode === 'skip_rows';
    if (
      input.directCopy &&
      input.complete &&
      input.lockFile &&
      !skipping &&
      input.format !== 'csv' &&
      !head.whole
    ) {
      const existing = await destinationColumns(tx, input.target);
      if (existing) {
        const direct = await loadDirect(
          tx,
          { ...input, complete: input.complete, lockFile: input.lockFile },
          head,
          existing,
          () => bytesRead,
          (stream) => readHead(stream, smallFileBytes),
        );
        if (direct.kind === 'loaded') return direct.result;
        cleanupDirect = direct.cleanup;
        stagedBecause = direct.reason;
        head = await direct.head();
      }
    }
    return { ...(await loadStreams(tx, input, head, () => bytesRead)), stagedBecause };
  } finally {
    // Whatever happened, nothing of the file stays open: the store's body, gunzip, DuckDB's reader.
    for (const s of [lines, decoded, raw, input.body]) s.destroy();
    await cleanupDirect?.();
  }
}

/** pipeline's callback: its error also reaches whoever reads the last stream, which reports it. */
const ignoreHere = () => undefined;

async function loadStreams(
  tx: postgres.TransactionSql,
  input: LoadFileInput,
  head: Head,
  bytesSoFar: () => number,
): Promise<LoadFileResult> {
  const policy = input.rowErrors ?? { mode: 'abort_file' };
  const skipping = policy.mode === 'skip_rows';

  let staged: Staged;
  let existing: Map<string, string> | undefined;
  if (skipping) {
    // Rows are checked one by one on their way in: the staged path, whatever the file's size.
    staged =
      input.format === 'csv'
        ? await stageCsv(tx, head.stream(), head, input.csv, input.declaredColumns ?? [], { skipping })
        : await stageJsonLinesRejecting(tx, head.stream(), head.firstLine);
    existing = await destinationColumns(tx, input.target);
  } else if (input.format !== 'csv' && head.whole && isUtf8(head.whole)) {
    // A small file: staged by one INSERT, sent together with the catalog read and the probe for
    // unknown keys (one round trip).
    const staging = stageSmallJsonLines(tx, head.whole, head.firstLine);
    const probing = destinationColumnsWithProbe(tx, input.target, input.declaredColumns ?? []);
    const objects = requireObjects(tx, jsonStage);
    // All go out at once; if staging fails, the others fail with it (the transaction is aborted),
    // and the staging error — which names the file's line — is the one to report.
    probing.catch(() => undefined);
    objects.catch(() => undefined);
    staged = await staging;
    await objects;
    let unknownKeys: boolean | undefined;
    ({ columns: existing, unknownKeys } = await probing);
    if (staged.kind === 'json') staged.unknownKeys = unknownKeys;
  } else {
    staged =
      input.format === 'csv'
        ? await stageCsv(tx, head.stream(), head, input.csv, input.declaredColumns ?? [])
        : await stageJsonLines(tx, head.stream(), head.firstLine);
    if (staged.kind === 'json') await requireObjects(tx, staged.table);
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

  let sampled = columnsAdded.filter((c) => c.sampled);
  if (skipping && sampled.length > 0) {
    // New columns are typed over the whole file first: a row is rejected for a value that fits no
    // column the table had, not for one the first rows' guess did not foresee.
    const widened = await widenColumns(tx, input.target, staged, sampled);
    if (widened.length > 0) {
      columns = (await destinationColumns(tx, input.target)) ?? columns;
      for (let i = 0; i < columnsAdded.length; i++)
        columnsAdded[i] = widened.find((w) => w.name === columnsAdded[i]!.name) ?? columnsAdded[i]!;
    }
    sampled = [];
  }

  const where = staged.kind === 'json' ? 'WHERE doc IS NOT NULL' : '';
  let rowsRejected = 0;
  const load = async (q: postgres.TransactionSql) => {
    if (skipping) {
      await rejectUnfitRows(q, staged, columns, input.schemaMode, input.csv.delimiter);
      rowsRejected = await enforceLimits(q, policy, staged.records);
    }
    const completion = await input.complete?.(
      {
        columns,
        bytesRead: bytesSoFar(),
        recordsSql: `(SELECT count(*) FROM ${staged.table} ${where})`,
        sourceNames: new Map(
          columnsAdded.filter((c) => c.sourceName !== undefined).map((c) => [c.name, c.sourceName!]),
        ),
        rowsRejected,
      },
      q,
    );
    const records = await insertFromStage(q, input, staged, columns, completion, skipping);
    // Every record we counted in the file is a row in the table or a rejected row, or the file
    // fails (and its transaction, state change included, rolls back).
    if (records + rowsRejected !== staged.records)
      throw new ReconciliationError(staged.records, records, rowsRejected);
    return records;
  };
  const result = (records: number): LoadFileResult => ({
    path: 'staged',
    records,
    rowsRejected,
    bytesRead: bytesSoFar(),
    columnsAdded,
    columns,
  });
  if (sampled.length === 0) return result(await load(tx));

  // This file's new columns were typed from its first rows. If a later value does not fit, the
  // types are inferred again over the whole file, the columns widened, and the load repeated. (A
  // postgres.js savepoint: a failed statement in the transaction itself would doom it.)
  try {
    return result(await tx.savepoint((sp) => load(sp)));
  } catch (err) {
    if (!(err instanceof postgres.PostgresError && err.code.startsWith('22'))) throw err;
    const widened = await widenColumns(tx, input.target, staged, sampled);
    if (widened.length === 0) throw err;
    columns = (await destinationColumns(tx, input.target)) ?? columns;
    const added = columnsAdded.map((c) => widened.find((w) => w.name === c.name) ?? c);
    return { ...result(await load(tx)), columnsAdded: added };
  }
}

/**
 * Each JSON line must be an object (its fields are the row's columns): the first that is not fails
 * the file, naming its line and what it is.
 */
async function requireObjects(tx: postgres.TransactionSql, stage: string): Promise<void> {
  const [bad] = await tx.unsafe<{ line: number; type: string }[]>(
    `SELECT line::float8 AS line, jsonb_typeof(doc) AS type FROM ${stage}
     WHERE jsonb_typeof(doc) <> 'object' ORDER BY line LIMIT 1`,
  );
  if (bad) throw new FileDataError(`line ${bad.line}: expected a JSON object, found ${article(bad.type)}`);
}

const article = (type: string) =>
  /^[aeiou]/.test(type) ? `an ${type}` : type === 'null' ? 'null' : `a ${type}`;
