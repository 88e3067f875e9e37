import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { parse as parseCsv } from 'csv-parse/sync';
import type postgres from 'postgres';
import type { CsvOptions, FileFormat } from '../domain/schemas.js';
import { columnNameProblem } from '../lib/identifiers.js';
import { copyFrom } from './copy.js';
import { type ColumnType, inferColumnType, patterns, sqlType, type ValueCounts } from './inference.js';
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
}

export interface LoadFileResult {
  records: number;
  bytesRead: number;
  columnsAdded: { name: string; type: string }[];
}

/** The file's content is wrong (malformed JSON, ragged CSV, a value that does not fit): retrying won't help. */
export class FileDataError extends Error {
  override name = 'FileDataError';
}

const stage = 'pg_temp._al_stage';
const firstLineLimit = 1024 * 1024;

/**
 * Loads one file into its destination inside the caller's transaction:
 * bytes are streamed unparsed into a temporary staging table with COPY (Postgres parses JSON and
 * CSV itself, so memory does not grow with the file), column types are inferred over every staged
 * row, missing columns are added, the file's earlier rows are deleted by lineage and the new rows
 * inserted. Committing the caller's transaction makes the file's rows and its state change atomic.
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
  const { firstLine, stream } = await peekFirstLine(decoded);

  const staged =
    input.format === 'csv'
      ? await stageCsv(tx, stream, firstLine, input.csv)
      : await stageJsonLines(tx, stream, firstLine);

  const existing = await destinationColumns(tx, input.target);
  const columnsAdded = await ensureColumns(tx, input.target, existing, staged);
  const columns = await destinationColumns(tx, input.target);

  await tx.unsafe(
    `DELETE FROM ${qualified(input.target.schema, input.target.table)} WHERE _source_file = $1`,
    [input.sourceUri],
  );
  const records = await insertFromStage(tx, input, staged, columns ?? new Map());
  return { records, bytesRead, columnsAdded };
}

/** Reads up to the first newline (for CSV headers and JSON key order) and hands back the whole stream. */
async function peekFirstLine(source: Readable): Promise<{ firstLine: string; stream: Readable }> {
  const iterator = source[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const head: Buffer[] = [];
  let size = 0;
  let firstLine = '';
  for (;;) {
    const next = await iterator.next();
    if (next.done) {
      firstLine = Buffer.concat(head).toString('utf8').split('\n', 1)[0] ?? '';
      break;
    }
    head.push(next.value);
    size += next.value.length;
    const nl = next.value.indexOf(10);
    if (nl >= 0 || size >= firstLineLimit) {
      firstLine = Buffer.concat(head).toString('utf8').split('\n', 1)[0] ?? '';
      break;
    }
  }
  async function* replay() {
    yield* head;
    for (;;) {
      const next = await iterator.next();
      if (next.done) return;
      yield next.value;
    }
  }
  return {
    firstLine: firstLine.replace(/\r$/, '').replace(/^\uFEFF/, ''),
    stream: Readable.from(replay(), { objectMode: false }),
  };
}

type Staged =
  | { kind: 'json'; keyOrder: string[] }
  | { kind: 'csv'; names: string[] /* destination column per staged cN */ };

async function stageJsonLines(
  tx: postgres.TransactionSql,
  stream: Readable,
  firstLine: string,
): Promise<Staged> {
  await tx.unsafe(`CREATE TEMP TABLE _al_stage (doc jsonb) ON COMMIT DROP`);
  // CSV mode with quote/delimiter bytes that valid JSON never contains raw: each line is one value,
  // and backslash escapes inside the JSON survive (text mode would interpret them).
  await copyFrom(
    tx,
    `COPY ${stage} (doc) FROM STDIN (FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')`,
    stream,
  );
  let keyOrder: string[] = [];
  try {
    const first: unknown = JSON.parse(firstLine);
    if (first && typeof first === 'object' && !Array.isArray(first)) keyOrder = Object.keys(first);
  } catch (err) {
    // Only the column order is taken from the first line; a malformed line was already rejected by COPY.
    if (!(err instanceof SyntaxError)) throw err;
  }
  return { kind: 'json', keyOrder };
}

async function stageCsv(
  tx: postgres.TransactionSql,
  stream: Readable,
  firstLine: string,
  opts: CsvOptions,
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
    await tx.unsafe(`CREATE TEMP TABLE _al_stage (c1 text) ON COMMIT DROP`);
    return { kind: 'csv', names: [] };
  }
  const names = opts.header ? header.map((h) => h.trim()) : header.map((_, i) => `c${i + 1}`);
  const seen = new Set<string>();
  for (const name of names) {
    const problem = columnNameProblem(name);
    if (problem) throw new FileDataError(`CSV header: ${problem}`);
    if (seen.has(name)) throw new FileDataError(`CSV header names column "${name}" twice`);
    seen.add(name);
  }
  const stageCols = names.map((_, i) => `c${i + 1}`);
  await tx.unsafe(
    `CREATE TEMP TABLE _al_stage (${stageCols.map((c) => `${c} text`).join(', ')}) ON COMMIT DROP`,
  );
  const options = [
    'FORMAT csv',
    `HEADER ${opts.header ? 'true' : 'false'}`,
    `DELIMITER ${copyChar(opts.delimiter)}`,
    `QUOTE ${copyChar(opts.quote)}`,
    `ESCAPE ${copyChar(opts.escape ?? opts.quote)}`,
    `NULL ${quoteLiteral(opts.null_string)}`,
  ];
  await copyFrom(tx, `COPY ${stage} (${stageCols.join(', ')}) FROM STDIN (${options.join(', ')})`, stream);
  return { kind: 'csv', names };
}

/**
 * Destination columns (name → SQL type), or undefined when the table does not exist yet.
 * Read with plain catalog scans rather than to_regclass(): those see every commit (each statement
 * takes a fresh snapshot), while the relation-name cache may still hold a "no such table" answer
 * from before this transaction waited on the DDL lock.
 */
async function destinationColumns(
  tx: postgres.TransactionSql,
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

async function stagedKeys(tx: postgres.TransactionSql, staged: Staged): Promise<string[]> {
  if (staged.kind === 'csv') return staged.names;
  const rows = await tx<
    { k: string }[]
  >`select distinct k from pg_temp._al_stage, jsonb_object_keys(doc) k where doc is not null`;
  return rows.map((r) => r.k);
}

async function inferTypes(
  tx: postgres.TransactionSql,
  staged: Staged,
  keys: string[],
): Promise<Map<string, ColumnType>> {
  const counts = new Map<string, ValueCounts>();
  if (staged.kind === 'json') {
    const rows = await tx<(ValueCounts & { k: string })[]>`
      select k,
        count(*) filter (where t <> 'null')::int as "nonNull",
        count(*) filter (where t = 'boolean')::int as booleans,
        count(*) filter (where t = 'number' and v ~ ${patterns.integer})::int as integers,
        count(*) filter (where t = 'number')::int as numbers,
        count(*) filter (where t = 'string' and v ~ ${patterns.timestamp})::int as timestamps,
        count(*) filter (where t = 'string' and v ~ ${patterns.date})::int as dates,
        count(*) filter (where t in ('object', 'array'))::int as nested
      from pg_temp._al_stage, jsonb_each(doc) as e(k, val),
        lateral (select jsonb_typeof(val) as t, val #>> '{}' as v) x
      where doc is not null and k = any(${keys})
      group by k`;
    for (const r of rows) counts.set(r.k, r);
  } else {
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
    const [row] = await tx.unsafe(`select ${selects.join(', ')} from ${stage}`).values();
    keys.forEach((name, i) => {
      const v = (row ?? []).slice(i * 6, i * 6 + 6).map(Number);
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
  }
  return new Map(keys.map((k) => [k, inferColumnType(counts.get(k) ?? emptyCounts)]));
}

const emptyCounts: ValueCounts = {
  nonNull: 0,
  booleans: 0,
  integers: 0,
  numbers: 0,
  timestamps: 0,
  dates: 0,
  nested: 0,
};

/**
 * Creates the table on first load and adds columns for new fields. DDL is serialised per table by an
 * advisory lock, and only taken when something is missing: parallel files into an existing table
 * never wait on each other here.
 */
async function ensureColumns(
  tx: postgres.TransactionSql,
  target: LoadTarget,
  existing: Map<string, string> | undefined,
  staged: Staged,
): Promise<{ name: string; type: string }[]> {
  const keys = await stagedKeys(tx, staged);
  for (const k of keys) {
    const problem = columnNameProblem(k);
    if (problem) throw new FileDataError(problem);
  }
  const missing = keys.filter((k) => !existing?.has(k));
  if (existing && missing.length === 0) return [];

  await tx`select pg_advisory_xact_lock(hashtext(${`autoloader.ddl:${target.schema}.${target.table}`}))`;
  const current = await destinationColumns(tx, target);
  const stillMissing = keys.filter((k) => !current?.has(k));
  const types = await inferTypes(tx, staged, stillMissing);
  const order = staged.kind === 'json' ? staged.keyOrder : staged.names;
  const rank = (k: string) => {
    const i = order.indexOf(k);
    return i < 0 ? Number.MAX_SAFE_INTEGER : i;
  };
  const added = stillMissing
    .sort((a, b) => rank(a) - rank(b) || a.localeCompare(b))
    .map((name) => ({ name, type: sqlType[types.get(name) ?? 'text'] }));

  const table = qualified(target.schema, target.table);
  if (!current) {
    await tx.unsafe(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(target.schema)}`);
    const cols = added.map((c) => `${quoteIdent(c.name)} ${c.type}`);
    cols.push(
      '_source_file text NOT NULL',
      '_ingested_at timestamptz NOT NULL DEFAULT now()',
      '_run_id text NOT NULL',
    );
    await tx.unsafe(`CREATE TABLE ${table} (${cols.join(', ')})`);
    // Lineage is how a file's rows are found again: replaced on a new ETag, removed on reprocess.
    await tx.unsafe(`CREATE INDEX ON ${table} (_source_file)`);
  } else if (added.length > 0) {
    await tx.unsafe(
      `ALTER TABLE ${table} ${added.map((c) => `ADD COLUMN IF NOT EXISTS ${quoteIdent(c.name)} ${c.type}`).join(', ')}`,
    );
  }
  return added;
}

const lineage = new Set(['_source_file', '_ingested_at', '_run_id']);

function castExpression(value: string, type: string): string {
  if (type === 'text') return value;
  return `(${value})::${type}`;
}

async function insertFromStage(
  tx: postgres.TransactionSql,
  input: LoadFileInput,
  staged: Staged,
  columns: Map<string, string>,
): Promise<number> {
  const table = qualified(input.target.schema, input.target.table);
  const names: string[] = [];
  const exprs: string[] = [];
  for (const [name, type] of columns) {
    if (lineage.has(name)) continue;
    if (staged.kind === 'json') {
      names.push(quoteIdent(name));
      exprs.push(
        type === 'jsonb'
          ? `doc -> ${quoteLiteral(name)}`
          : castExpression(`doc ->> ${quoteLiteral(name)}`, type),
      );
    } else {
      const i = staged.names.indexOf(name);
      if (i < 0) continue;
      names.push(quoteIdent(name));
      exprs.push(castExpression(`c${i + 1}`, type));
    }
  }
  names.push('_source_file', '_ingested_at', '_run_id');
  exprs.push('$1', 'now()', '$2');
  const where = staged.kind === 'json' ? 'WHERE doc IS NOT NULL' : '';
  const result = await tx.unsafe(
    `INSERT INTO ${table} (${names.join(', ')}) SELECT ${exprs.join(', ')} FROM ${stage} ${where}`,
    [input.sourceUri, input.runId],
  );
  return result.count;
}
