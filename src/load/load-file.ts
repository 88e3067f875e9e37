import { isUtf8 } from 'node:buffer';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { parse as parseCsv } from 'csv-parse/sync';
import postgres from 'postgres';
import type { CsvOptions, DeclaredColumn, FileFormat, SchemaMode } from '../domain/schemas.js';
import { columnNameProblem } from '../lib/identifiers.js';
import { copyFrom } from './copy.js';
import { convertToJsonLines } from './duckdb-convert.js';
import {
  type ColumnType,
  emptyCounts,
  inferColumnType,
  patterns,
  sqlType,
  type ValueCounts,
} from './inference.js';
import { copyChar, qualified, quoteIdent, quoteLiteral } from './sql-text.js';

export interface LoadTarget {
  schema: string;
  table: string;
}

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

export interface AddedColumn {
  name: string;
  type: string;
  /** Typed from the file's first rows only. */
  sampled?: boolean;
}

/** The caller's completion statement changed no row (the file was loaded meanwhile): roll back. */
export class NotCompleted extends Error {
  override name = 'NotCompleted';
}

/** The file's content is wrong (malformed JSON, ragged CSV, a value that does not fit): retrying won't help. */
export class FileDataError extends Error {
  override name = 'FileDataError';
}

/**
 * Staging tables live for the connection (ON COMMIT DELETE ROWS empties them at each commit), so a
 * small file does not pay for creating and dropping one: one for JSON, one per CSV width.
 */
const jsonStage = 'pg_temp._al_stage_json';
const csvStage = (width: number) => `pg_temp._al_stage_csv_${width}`;

async function createStage(tx: postgres.TransactionSql, table: string, columns: string): Promise<void> {
  await tx.unsafe(
    `CREATE TEMP TABLE IF NOT EXISTS ${table.slice('pg_temp.'.length)} (${columns}) ON COMMIT DELETE ROWS`,
  );
}
/**
 * For statements that run once per file with the same text (per table and column set): prepared
 * once per connection. Unprepared, postgres.js describes a parameterised statement before binding
 * it, a second round trip on every call.
 */
const reused = { prepare: true } as const;

/** Files up to this size (decoded) are read whole and staged with one INSERT rather than a COPY. */
export const smallFileBytes = 1024 * 1024;

/**
 * Loads one file into its destination inside the caller's transaction: bytes are streamed unparsed
 * into a temporary staging table with COPY (Postgres parses JSON and CSV itself, so memory does not
 * grow with the file; a small file is staged by one INSERT), new fields' types are inferred from the
 * staged rows (widened over the whole file if a later row does not fit), missing columns are added,
 * the file's earlier rows are deleted by lineage and the new rows inserted. Committing the caller's
 * transaction makes the file's rows and its state change atomic.
 */
export async function loadFile(tx: postgres.TransactionSql, input: LoadFileInput): Promise<LoadFileResult> {
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
    let unknownKeys: boolean | undefined;
    [staged, { columns: existing, unknownKeys }] = await Promise.all([
      stageSmallJsonLines(tx, head.whole, head.firstLine),
      destinationColumnsWithProbe(tx, input.target, input.declaredColumns ?? []),
    ]);
    if (staged.kind === 'json') staged.unknownKeys = unknownKeys;
  } else {
    staged =
      input.format === 'csv'
        ? await stageCsv(tx, head.stream(), head.firstLine, input.csv, input.declaredColumns ?? [])
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
    return insertFromStage(q, input, staged, columns, completion?.statement);
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

/**
 * Infers the sampled columns' types over every staged row and alters those that differ (always to a
 * more general type: the sample's values are among the whole file's). Returns the changed columns.
 */
async function widenColumns(
  tx: postgres.TransactionSql,
  target: LoadTarget,
  staged: Staged,
  sampled: AddedColumn[],
): Promise<AddedColumn[]> {
  const { types } = await inferTypes(
    tx,
    staged,
    sampled.map((c) => c.name),
    false,
  );
  const changed = sampled
    .map((c) => ({ name: c.name, type: sqlType[types.get(c.name) ?? 'text'] }))
    .filter((c, i) => c.type !== sampled[i]!.type);
  if (changed.length === 0) return [];
  await tx`select pg_advisory_xact_lock(hashtext(${`autoloader.ddl:${target.schema}.${target.table}`}))`;
  await tx.unsafe(
    `ALTER TABLE ${qualified(target.schema, target.table)} ${changed
      .map(
        (c) =>
          `ALTER COLUMN ${quoteIdent(c.name)} TYPE ${c.type} USING ${quoteIdent(c.name)}::text::${c.type}`,
      )
      .join(', ')}`,
  );
  return changed;
}

/**
 * Reads the start of the file: up to `limit` bytes, or all of it when it is smaller. The first line
 * gives CSV headers and JSON key order; a file read whole is staged without a COPY round trip.
 */
async function readHead(source: Readable, limit: number): Promise<Head> {
  const iterator = source[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const chunks: Buffer[] = [];
  let size = 0;
  let complete = false;
  while (size <= limit) {
    const next = await iterator.next();
    if (next.done) {
      complete = true;
      break;
    }
    chunks.push(next.value);
    size += next.value.length;
  }
  const start = Buffer.concat(chunks);
  const nl = start.indexOf(10);
  const firstLine = start
    .subarray(0, nl < 0 ? Math.min(start.length, limit) : nl)
    .toString('utf8')
    .replace(/\r$/, '')
    .replace(/^\uFEFF/, '');
  async function* replay() {
    yield start;
    for (;;) {
      const next = await iterator.next();
      if (next.done) return;
      yield next.value;
    }
  }
  return {
    firstLine,
    whole: complete ? start : undefined,
    stream: () => Readable.from(replay(), { objectMode: false }),
  };
}

interface Head {
  firstLine: string;
  /** The whole (decoded) file, when it fit in the head. */
  whole: Buffer | undefined;
  /** The whole file as a stream (the head, then the rest). */
  stream: () => Readable;
}

type Staged =
  | {
      kind: 'json';
      table: string;
      keyOrder: string[];
      /** Whether some document has a key outside the table's and the declared columns, if probed. */
      unknownKeys?: boolean;
    }
  | { kind: 'csv'; table: string; names: string[] /* destination column per staged cN */ };

async function stageJsonLines(
  tx: postgres.TransactionSql,
  stream: Readable,
  firstLine: string,
): Promise<Staged> {
  await createStage(tx, jsonStage, 'doc jsonb');
  // CSV mode with quote/delimiter bytes that valid JSON never contains raw: each line is one value,
  // and backslash escapes inside the JSON survive (text mode would interpret them).
  await copyFrom(
    tx,
    `COPY ${jsonStage} (doc) FROM STDIN (FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')`,
    stream,
  );
  return { kind: 'json', table: jsonStage, keyOrder: keyOrderOf(firstLine) };
}

/**
 * The same staging for a file read whole: one INSERT splitting the text into lines, queued with the
 * stage's creation. Lines are cast to jsonb exactly as COPY would (a malformed one fails the file);
 * empty lines are skipped, as COPY's NULLs are.
 */
async function stageSmallJsonLines(
  tx: postgres.TransactionSql,
  content: Buffer,
  firstLine: string,
): Promise<Staged> {
  const text = content.toString('utf8');
  try {
    await Promise.all([
      createStage(tx, jsonStage, 'doc jsonb'),
      tx.unsafe(
        `INSERT INTO ${jsonStage} (doc)
         SELECT nullif(rtrim(line, E'\\r'), '')::jsonb FROM string_to_table($1::text, E'\\n') AS line`,
        [text],
        reused,
      ),
    ]);
  } catch (err) {
    // COPY would say which line was wrong; find it here (only on failure: the file is in memory).
    if (err instanceof Error) {
      const line = firstInvalidJsonLine(text);
      if (line !== undefined) Object.assign(err, { fileLine: line });
    }
    throw err;
  }
  return { kind: 'json', table: jsonStage, keyOrder: keyOrderOf(firstLine) };
}

function firstInvalidJsonLine(text: string): number | undefined {
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.replace(/\r$/, '');
    if (line === '') continue;
    try {
      JSON.parse(line);
    } catch {
      return i + 1;
    }
  }
  return undefined;
}

/** New columns follow the first record's key order. */
function keyOrderOf(firstLine: string): string[] {
  try {
    const first: unknown = JSON.parse(firstLine);
    if (first && typeof first === 'object' && !Array.isArray(first)) return Object.keys(first);
  } catch (err) {
    // Only the column order is taken from the first line; a malformed line is rejected by Postgres.
    if (!(err instanceof SyntaxError)) throw err;
  }
  return [];
}

async function stageCsv(
  tx: postgres.TransactionSql,
  stream: Readable,
  firstLine: string,
  opts: CsvOptions,
  declared: DeclaredColumn[],
): Promise<Staged> {
  let header: string[];
  try {
    const rows = parseCsv(firstLine, {
      delimiter: opts.delimiter,
      quote: opts.quote,
      escape: opts.escape ?? opts.quote,
    }) as string[][];
    header = rows[0] ?? [];
  } catch (err) {
    throw new FileDataError(`first line is not valid CSV: ${(err as Error).message}`);
  }
  if (header.length === 0) {
    // An empty file: nothing to stage.
    await createStage(tx, csvStage(1), 'c1 text');
    return { kind: 'csv', table: csvStage(1), names: [] };
  }
  // Without a header, declared columns name the fields in file order.
  const names = opts.header
    ? header.map((h) => h.trim())
    : header.map((_, i) => declared[i]?.name ?? `c${i + 1}`);
  const seen = new Set<string>();
  for (const name of names) {
    const problem = columnNameProblem(name);
    if (problem) throw new FileDataError(`CSV header: ${problem}`);
    if (seen.has(name)) throw new FileDataError(`CSV header names column "${name}" twice`);
    seen.add(name);
  }
  const stageCols = names.map((_, i) => `c${i + 1}`);
  const table = csvStage(stageCols.length);
  await createStage(tx, table, stageCols.map((c) => `${c} text`).join(', '));
  const options = [
    'FORMAT csv',
    `HEADER ${opts.header ? 'true' : 'false'}`,
    `DELIMITER ${copyChar(opts.delimiter)}`,
    `QUOTE ${copyChar(opts.quote)}`,
    `ESCAPE ${copyChar(opts.escape ?? opts.quote)}`,
    `NULL ${quoteLiteral(opts.null_string)}`,
  ];
  await copyFrom(tx, `COPY ${table} (${stageCols.join(', ')}) FROM STDIN (${options.join(', ')})`, stream);
  return { kind: 'csv', table, names };
}

/**
 * Destination columns (name → SQL type), or undefined when the table does not exist yet.
 * Read with plain catalog scans rather than to_regclass(): those see every commit (each statement
 * takes a fresh snapshot), while the relation-name cache may still hold a "no such table" answer
 * from before this transaction waited on the DDL lock.
 */
export async function destinationColumns(
  tx: postgres.TransactionSql | postgres.Sql,
  target: LoadTarget,
): Promise<Map<string, string> | undefined> {
  const rows = await tx<{ name: string | null; type: string | null }[]>`
    select a.attname as name, format_type(a.atttypid, a.atttypmod) as type
    from pg_class c
    join pg_namespace n on n.oid = c.relnamespace
    left join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
    where n.nspname = ${target.schema} and c.relname = ${target.table} and c.relkind in ('r', 'p')
    order by a.attnum`;
  if (rows.length === 0) return undefined;
  return new Map(rows.filter((r) => r.name !== null).map((r) => [r.name!, r.type!]));
}

/**
 * destinationColumns and, in the same statement (so from the same catalog snapshot), whether any
 * staged JSON document has a key outside those columns and the declared ones. `unknownKeys` is
 * undefined when the table does not exist.
 */
async function destinationColumnsWithProbe(
  tx: postgres.TransactionSql,
  target: LoadTarget,
  declared: DeclaredColumn[],
): Promise<{ columns: Map<string, string> | undefined; unknownKeys: boolean | undefined }> {
  const rows = await tx<{ name: string; type: string; unknown: boolean }[]>`
    with t as (
      select c.oid from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = ${target.schema} and c.relname = ${target.table} and c.relkind in ('r', 'p')
    ), cols as (
      select a.attname::text as name, format_type(a.atttypid, a.atttypmod) as type, a.attnum
      from pg_attribute a join t on a.attrelid = t.oid where a.attnum > 0 and not a.attisdropped
    ), probe as (
      select exists (
        select 1 from pg_temp._al_stage_json
        where doc is not null and doc - (array(select name from cols) || ${declared.map((c) => c.name)}::text[]) <> '{}'::jsonb
      ) as unknown
    )
    select cols.name, cols.type, probe.unknown from cols cross join probe order by cols.attnum`;
  if (rows.length === 0) return { columns: undefined, unknownKeys: undefined };
  return { columns: new Map(rows.map((r) => [r.name, r.type])), unknownKeys: rows[0]!.unknown };
}

/**
 * The staged fields. For JSON, a cheap probe first asks whether any document has a key outside the
 * known columns (the usual answer once a table exists is no); only then are the keys enumerated.
 */
async function stagedKeys(
  tx: postgres.TransactionSql,
  staged: Staged,
  existing: Map<string, string> | undefined,
  declared: DeclaredColumn[],
): Promise<string[]> {
  if (staged.kind === 'csv') return staged.names;
  if (staged.unknownKeys === false) return [];
  const known = [...(existing?.keys() ?? []), ...declared.map((c) => c.name)];
  if (known.length > 0) {
    const [probe] = await tx<{ unknown: boolean }[]>`
      select exists (
        select 1 from pg_temp._al_stage_json where doc is not null and doc - ${known}::text[] <> '{}'::jsonb
      ) as unknown`;
    if (!probe?.unknown) return [];
  }
  const rows = await tx<
    { k: string }[]
  >`select distinct k from pg_temp._al_stage_json, jsonb_object_keys(doc) k where doc is not null`;
  return rows.map((r) => r.k);
}

/** Rows of a new field's first file its type is inferred from; the rest are checked by the load itself. */
const inferenceSampleRows = 10_000;

interface Inferred {
  types: Map<string, ColumnType>;
  /** Fields typed from the first rows only: widened over the whole file if a later value does not fit. */
  sampled: Set<string>;
}

/**
 * Column types for new fields. With `sample`, the counts cover the file's first rows (COPY keeps
 * file order); a field with no value among them is counted over the whole file. Without, every row.
 */
async function inferTypes(
  tx: postgres.TransactionSql,
  staged: Staged,
  keys: string[],
  sample: boolean,
): Promise<Inferred> {
  const limit = sample ? inferenceSampleRows : null;
  const counted = await countValues(tx, staged, keys, limit);
  const sampled = new Set<string>();
  if (limit !== null && counted.rows >= limit) {
    const unseen = keys.filter((k) => (counted.counts.get(k)?.nonNull ?? 0) === 0);
    if (unseen.length > 0) {
      const whole = await countValues(tx, staged, unseen, null);
      for (const k of unseen) counted.counts.set(k, whole.counts.get(k) ?? emptyCounts);
    }
    for (const k of keys) if (!unseen.includes(k)) sampled.add(k);
  }
  const types = new Map(keys.map((k) => [k, inferColumnType(counted.counts.get(k) ?? emptyCounts)]));
  return { types, sampled };
}

/** Per field: how many values are null, booleans, integers… over the first `limit` rows or all. */
async function countValues(
  tx: postgres.TransactionSql,
  staged: Staged,
  keys: string[],
  limit: number | null,
): Promise<{ counts: Map<string, ValueCounts>; rows: number }> {
  const counts = new Map<string, ValueCounts>();
  const limitClause = limit === null ? '' : `LIMIT ${limit}`;
  if (staged.kind === 'json') {
    const [total] = await tx.unsafe<{ n: number }[]>(
      `SELECT count(*)::int AS n FROM (SELECT 1 FROM ${jsonStage} WHERE doc IS NOT NULL ${limitClause}) s`,
    );
    const rows = await tx.unsafe<(ValueCounts & { k: string })[]>(
      `select k,
        count(*) filter (where t <> 'null')::int as "nonNull",
        count(*) filter (where t = 'boolean')::int as booleans,
        count(*) filter (where t = 'number' and v ~ $2)::int as integers,
        count(*) filter (where t = 'number')::int as numbers,
        count(*) filter (where t = 'string' and v ~ $3)::int as timestamps,
        count(*) filter (where t = 'string' and v ~ $4)::int as dates,
        count(*) filter (where t in ('object', 'array'))::int as nested
      from (select doc from ${jsonStage} where doc is not null ${limitClause}) s, jsonb_each(s.doc) as e(k, val),
        lateral (select jsonb_typeof(val) as t, val #>> '{}' as v) x
      where k = any($1)
      group by k`,
      [keys, patterns.integer, patterns.timestamp, patterns.date],
    );
    for (const r of rows) counts.set(r.k, r);
    return { counts, rows: total?.n ?? 0 };
  }
  const selects = keys.map((name) => {
    const c = `c${staged.names.indexOf(name) + 1}`;
    return [
      `count(${c})::int`,
      `count(*) filter (where ${c} ~* ${quoteLiteral(patterns.boolean)})::int`,
      `count(*) filter (where ${c} ~ ${quoteLiteral(patterns.integer)})::int`,
      `count(*) filter (where ${c} ~ ${quoteLiteral(patterns.number)})::int`,
      `count(*) filter (where ${c} ~ ${quoteLiteral(patterns.timestamp)})::int`,
      `count(*) filter (where ${c} ~ ${quoteLiteral(patterns.date)})::int`,
    ].join(', ');
  });
  const [row] = await tx
    .unsafe(
      `select count(*)::int, ${selects.join(', ')} from (select * from ${staged.table} ${limitClause}) s`,
    )
    .values();
  const values = (row ?? []).map(Number);
  keys.forEach((name, i) => {
    const v = values.slice(1 + i * 6, 1 + i * 6 + 6);
    counts.set(name, {
      nonNull: v[0]!,
      booleans: v[1]!,
      integers: v[2]!,
      numbers: v[3]!,
      timestamps: v[4]!,
      dates: v[5]!,
      nested: 0,
    });
  });
  return { counts, rows: values[0] ?? 0 };
}

/**
 * Creates the table on first load and adds columns for new fields. Declared columns (the ingestion's
 * explicit schema) are created with their declared types; other fields are inferred, or, when the
 * table's shape is fixed (declared columns, or an existing table in rescue mode), left to the schema
 * mode. DDL is serialised per table by an advisory lock, and only taken when something is missing:
 * parallel files into an existing table never wait on each other here.
 */
async function ensureColumns(
  tx: postgres.TransactionSql,
  target: LoadTarget,
  existing: Map<string, string> | undefined,
  staged: Staged,
  mode: SchemaMode,
  declared: DeclaredColumn[],
  ddl: postgres.Sql | undefined,
): Promise<AddedColumn[]> {
  // In rescue mode the table's shape is fixed by its declared columns, or once it exists: other
  // fields go to _rescued_data, so they need not even be listed.
  const shapeFixed = (table: Map<string, string> | undefined) =>
    mode === 'rescue' && (declared.length > 0 || table !== undefined);
  const keys = shapeFixed(existing) ? [] : await stagedKeys(tx, staged, existing, declared);
  const declaredNames = new Set(declared.map((c) => c.name));
  for (const k of keys) {
    const problem = columnNameProblem(k);
    if (problem) throw new FileDataError(problem);
  }
  const undeclared = (table: Map<string, string> | undefined) =>
    keys.filter((k) => !table?.has(k) && !declaredNames.has(k));
  if (mode === 'fail' && (existing || declared.length > 0)) {
    const extra = undeclared(existing);
    if (extra.length > 0) {
      const where = existing ? `${target.schema}.${target.table}` : 'the declared columns';
      throw new FileDataError(
        `field${extra.length > 1 ? 's' : ''} ${extra.map((k) => `"${k}"`).join(', ')} not in ${where} (schema_mode "fail")`,
      );
    }
  }
  const missing = (table: Map<string, string> | undefined) => ({
    declared: declared.filter((c) => !table?.has(c.name)),
    inferred: shapeFixed(table) ? [] : undeclared(table),
    rescue: mode === 'rescue' && !table?.has('_rescued_data'),
  });
  const before = missing(existing);
  if (existing && before.declared.length === 0 && before.inferred.length === 0 && !before.rescue)
    return noChange;

  /** What to add to `table` (undefined: no table yet), types inferred over this file's staged rows. */
  const plan = async (table: Map<string, string> | undefined) => {
    const now = missing(table);
    if (table && now.declared.length === 0 && now.inferred.length === 0 && !now.rescue) return [];
    const inferred: Inferred =
      now.inferred.length > 0
        ? await inferTypes(tx, staged, now.inferred, true)
        : { types: new Map(), sampled: new Set() };
    const order = staged.kind === 'json' ? staged.keyOrder : staged.names;
    const rank = (k: string) => {
      const i = order.indexOf(k);
      return i < 0 ? Number.MAX_SAFE_INTEGER : i;
    };
    const added = [
      ...now.declared.map((c) => ({ name: c.name, type: c.type })),
      ...now.inferred
        .sort((a, b) => rank(a) - rank(b) || a.localeCompare(b))
        .map((name) => {
          const type = sqlType[inferred.types.get(name) ?? 'text'];
          // Only a type a later value can fail to fit is worth widening.
          const sampled = inferred.sampled.has(name) && type !== 'text' && type !== 'jsonb';
          return sampled ? { name, type, sampled } : { name, type };
        }),
    ];
    if (now.rescue) added.push({ name: '_rescued_data', type: 'jsonb' });
    return added;
  };
  const lockDdl = (t: postgres.TransactionSql) =>
    t`select pg_advisory_xact_lock(hashtext(${`autoloader.ddl:${target.schema}.${target.table}`}))`;

  if (!existing && ddl) {
    // A new table is created in its own short transaction, so that the other files loading into it
    // wait for its creation only, not for this file's whole load. Its columns come from this file
    // (types from its first rows; loadFile widens them if a later row does not fit).
    const created = await ddl.begin(async (dtx) => {
      await lockDdl(dtx);
      if (await destinationColumns(dtx, target)) return undefined;
      const added = await plan(undefined);
      await createTable(dtx, target, added);
      return added;
    });
    if (created) return created;
    // Another file created it meanwhile: add what this file needs below, atomically with its load.
  }

  await lockDdl(tx);
  const current = await destinationColumns(tx, target);
  // Another file created the columns while this one waited for the lock: nothing to infer.
  const added = await plan(current);
  if (!current) await createTable(tx, target, added);
  else if (added.length > 0) {
    await tx.unsafe(
      `ALTER TABLE ${qualified(target.schema, target.table)} ${added.map((c) => `ADD COLUMN IF NOT EXISTS ${quoteIdent(c.name)} ${c.type}`).join(', ')}`,
    );
  }
  return added;
}

async function createTable(
  tx: postgres.TransactionSql,
  target: LoadTarget,
  columns: { name: string; type: string }[],
): Promise<void> {
  const table = qualified(target.schema, target.table);
  await ensureSchema(tx, target.schema);
  const cols = columns.map((c) => `${quoteIdent(c.name)} ${c.type}`);
  cols.push(
    '_source_file text NOT NULL',
    '_ingested_at timestamptz NOT NULL DEFAULT now()',
    '_run_id text NOT NULL',
  );
  await tx.unsafe(`CREATE TABLE ${table} (${cols.join(', ')})`);
  // Lineage is how a file's rows are found again: replaced on a new ETag, removed on reprocess.
  await tx.unsafe(`CREATE INDEX ON ${table} (_source_file)`);
}

/**
 * Two first loads into different tables of a new schema would both try to create it (and one would
 * fail on pg_namespace's unique index): creating a schema is serialised on its own lock.
 */
async function ensureSchema(tx: postgres.TransactionSql, schema: string): Promise<void> {
  const exists = async () => (await tx`select 1 from pg_namespace where nspname = ${schema}`).length > 0;
  if (await exists()) return;
  await tx`select pg_advisory_xact_lock(hashtext(${`autoloader.ddl-schema:${schema}`}))`;
  if (await exists()) return;
  await tx.unsafe(`CREATE SCHEMA ${quoteIdent(schema)}`);
}

export const lineage = new Set(['_source_file', '_ingested_at', '_run_id', '_rescued_data']);

/** ensureColumns' answer when the table already had every column: no DDL, no lock taken. */
const noChange: AddedColumn[] = [];

function castExpression(value: string, type: string): string {
  if (type === 'text') return value;
  return `(${value})::${type}`;
}

/** True when the text value does not fit the column type (needs PostgreSQL 16+). */
function misfit(value: string, type: string): string {
  return `(${value} IS NOT NULL AND NOT pg_input_is_valid(${value}, ${quoteLiteral(type)}))`;
}

interface ColumnSource {
  name: string;
  type: string;
  /** The value as text (for validity checks and casts). */
  text: string;
  /** The value as it should appear in _rescued_data. */
  json: string;
}

function columnSources(staged: Staged, columns: Map<string, string>): ColumnSource[] {
  const out: ColumnSource[] = [];
  for (const [name, type] of columns) {
    if (lineage.has(name)) continue;
    if (staged.kind === 'json') {
      out.push({ name, type, text: `doc ->> ${quoteLiteral(name)}`, json: `doc -> ${quoteLiteral(name)}` });
    } else {
      const i = staged.names.indexOf(name);
      if (i >= 0) out.push({ name, type, text: `c${i + 1}`, json: `to_jsonb(c${i + 1})` });
    }
  }
  return out;
}

const checkedTypes = (t: string) => t !== 'text' && t !== 'jsonb';

/** jsonb_build_object over "key, value" pairs, split to respect Postgres' 100-argument limit. */
function buildObject(pairs: string[]): string {
  if (pairs.length === 0) return `'{}'::jsonb`;
  const parts: string[] = [];
  for (let i = 0; i < pairs.length; i += 50)
    parts.push(`jsonb_build_object(${pairs.slice(i, i + 50).join(', ')})`);
  return parts.join(' || ');
}

async function requirePgInputIsValid(tx: postgres.TransactionSql, mode: SchemaMode): Promise<void> {
  const [v] = await tx<{ n: number }[]>`select current_setting('server_version_num')::int as n`;
  if ((v?.n ?? 0) < 160000) {
    throw new FileDataError(`schema_mode "${mode}" needs PostgreSQL 16 or later (pg_input_is_valid)`);
  }
}

/** schema_mode "fail": the first value that does not fit its column fails the file, naming the field. */
async function failOnMisfit(
  tx: postgres.TransactionSql,
  target: LoadTarget,
  stageTable: string,
  cols: ColumnSource[],
): Promise<void> {
  const checked = cols.filter((c) => checkedTypes(c.type));
  if (checked.length === 0) return;
  await requirePgInputIsValid(tx, 'fail');
  const which = checked.map((c) => `CASE WHEN ${misfit(c.text, c.type)} THEN ${quoteLiteral(c.name)} END`);
  const values = checked.map((c) => `CASE WHEN ${misfit(c.text, c.type)} THEN ${c.text} END`);
  const [bad] = await tx.unsafe<{ field: string; value: string }[]>(
    `SELECT coalesce(${which.join(', ')}) AS field, coalesce(${values.join(', ')}) AS value
     FROM ${stageTable} WHERE ${checked.map((c) => misfit(c.text, c.type)).join(' OR ')} LIMIT 1`,
  );
  if (bad) {
    const type = checked.find((c) => c.name === bad.field)?.type;
    throw new FileDataError(
      `field "${bad.field}": value "${String(bad.value).slice(0, 100)}" is not a valid ${type} for ${target.schema}.${target.table} (schema_mode "fail")`,
    );
  }
}

/** The destination columns and, for each, its value from the staged row (cast to the column type). */
function valueList(
  kind: Staged['kind'],
  cols: ColumnSource[],
  rescue: boolean,
): { names: string[]; exprs: string[] } {
  const names: string[] = [];
  const exprs: string[] = [];
  for (const c of cols) {
    names.push(quoteIdent(c.name));
    if (c.type === 'jsonb') exprs.push(kind === 'json' ? c.json : castExpression(c.text, 'jsonb'));
    else if (rescue && checkedTypes(c.type))
      exprs.push(`CASE WHEN ${misfit(c.text, c.type)} THEN NULL ELSE ${castExpression(c.text, c.type)} END`);
    else exprs.push(castExpression(c.text, c.type));
  }
  return { names, exprs };
}

/** valueList for JSON documents in a `doc` column, as add_columns loads them. */
export function jsonValueList(columns: Map<string, string>): { names: string[]; exprs: string[] } {
  return valueList('json', columnSources({ kind: 'json', table: '', keyOrder: [] }, columns), false);
}

async function insertFromStage(
  tx: postgres.TransactionSql,
  input: LoadFileInput,
  staged: Staged,
  columns: Map<string, string>,
  completion: postgres.PendingQuery<postgres.Row[]> | undefined,
): Promise<number> {
  const table = qualified(input.target.schema, input.target.table);
  const cols = columnSources(staged, columns);
  if (input.schemaMode === 'fail') await failOnMisfit(tx, input.target, staged.table, cols);
  const rescue = input.schemaMode === 'rescue' && columns.has('_rescued_data');
  if (rescue && cols.some((c) => checkedTypes(c.type))) await requirePgInputIsValid(tx, 'rescue');
  const { names, exprs } = valueList(staged.kind, cols, rescue);
  if (rescue) {
    // Values that do not fit their column, plus fields the table has no column for.
    const misfits = cols
      .filter((c) => checkedTypes(c.type))
      .map((c) => `${quoteLiteral(c.name)}, CASE WHEN ${misfit(c.text, c.type)} THEN ${c.json} END`);
    const known = [...columns.keys()];
    const extra =
      staged.kind === 'json'
        ? `(doc - ARRAY[${known.map(quoteLiteral).join(', ') || "''"}]::text[])`
        : buildObject(
            staged.names
              .map((n, i) => (columns.has(n) ? null : `${quoteLiteral(n)}, to_jsonb(c${i + 1})`))
              .filter((x): x is string => x !== null),
          );
    const rescued = misfits.length > 0 ? `jsonb_strip_nulls(${buildObject(misfits)}) || ${extra}` : extra;
    names.push('_rescued_data');
    exprs.push(`NULLIF(${rescued}, '{}'::jsonb)`);
  }
  names.push('_source_file', '_ingested_at', '_run_id');
  exprs.push('$1', 'now()', '$2');
  const where = staged.kind === 'json' ? 'WHERE doc IS NOT NULL' : '';
  // The file's earlier rows (a rewritten file, a retried load) go, its rows arrive, and the caller's
  // completion statement (the file's state) follows: sent together, one round trip.
  const [, inserted, completed] = await Promise.all([
    tx.unsafe(`DELETE FROM ${table} WHERE _source_file = $1`, [input.sourceUri], reused),
    tx.unsafe(
      `INSERT INTO ${table} (${names.join(', ')}) SELECT ${exprs.join(', ')} FROM ${staged.table} ${where}`,
      [input.sourceUri, input.runId],
      reused,
    ),
    completion,
  ]);
  if (completion && completed?.count === 0) throw new NotCompleted();
  return inserted.count;
}
