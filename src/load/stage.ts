import { Readable } from 'node:stream';
import { parse as parseCsv } from 'csv-parse/sync';
import postgres from 'postgres';
import type { CsvOptions, DeclaredColumn } from '../domain/schemas.js';
import { mapFieldNames } from './column-names.js';
import { FileDataError, LineDataError, reused } from './common.js';
import { copyFrom } from './copy.js';
import {
  csvForCopy,
  jsonLinesAsCopyBinary,
  jsonTextWithoutNulEscapes,
  nonBlankJsonLines,
  type RecordCount,
} from './copy-input.js';
import { stageCsvSkipping, stageJsonLinesSkipping } from './row-errors.js';
import { copyChar, quoteLiteral } from './sql-text.js';

/** Staging: a file's bytes into a temporary table, unparsed, for Postgres to parse and type. */

/**
 * Staging tables live for the connection (ON COMMIT DELETE ROWS empties them at each commit), so a
 * small file does not pay for creating and dropping one: one for JSON, one per CSV width.
 */
export const jsonStage = 'pg_temp._al_stage_jsonl';
/** Its columns: each document with the line of the file it is on. */
const jsonStageColumns = 'line bigint, doc jsonb';
export const csvStage = (width: number) => `pg_temp._al_stage_csv_${width}`;

export async function createStage(
  tx: postgres.TransactionSql,
  table: string,
  columns: string,
): Promise<void> {
  await tx.unsafe(
    `CREATE TEMP TABLE IF NOT EXISTS ${table.slice('pg_temp.'.length)} (${columns}) ON COMMIT DELETE ROWS`,
  );
}

/** Files up to this size (decoded) are read whole and staged with one INSERT rather than a COPY. */
export const smallFileBytes = 1024 * 1024;

/**
 * The JSON lines of a text parameter as rows of `doc jsonb` (a FROM item), cast exactly as COPY
 * would: a malformed line fails the statement; an empty line is a NULL doc, which loads skip.
 */
export function jsonLinesOf(param: string): string {
  return `(SELECT n AS line, nullif(btrim(t, E' \\t\\r'), '')::jsonb AS doc FROM string_to_table(${param}::text, E'\\n') WITH ORDINALITY AS s(t, n)) AS lines`;
}

/** A UTF-8 byte-order mark (files from Windows tools) is not part of the first record. */
export function withoutBom(content: Buffer): Buffer {
  return content.length >= 3 && content[0] === 0xef && content[1] === 0xbb && content[2] === 0xbf
    ? content.subarray(3)
    : content;
}

/**
 * Reads the start of the file: up to `limit` bytes, or all of it when it is smaller. The first line
 * gives CSV headers and JSON key order; a file read whole is staged without a COPY round trip.
 */
export async function readHead(source: Readable, limit: number): Promise<Head> {
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
    try {
      yield start;
      for (;;) {
        const next = await iterator.next();
        if (next.done) return;
        yield next.value;
      }
    } finally {
      // Stopped early (a COPY refused the data): the source is closed too, not left open.
      await iterator.return?.();
    }
  }
  return {
    firstLine,
    bytes: start,
    whole: complete ? start : undefined,
    stream: () => Readable.from(replay(), { objectMode: false }),
  };
}

export interface Head {
  firstLine: string;
  /** The bytes read so far: the whole file, or its first `limit` bytes and a little more. */
  bytes: Buffer;
  /** The whole (decoded) file, when it fit in the head. */
  whole: Buffer | undefined;
  /** The whole file as a stream (the head, then the rest). */
  stream: () => Readable;
}

export type Staged = (
  | {
      kind: 'json';
      table: string;
      keyOrder: string[];
      /** Whether some document has a key outside the table's and the declared columns, if probed. */
      unknownKeys?: boolean;
    }
  | {
      kind: 'csv';
      table: string;
      /** The destination column of each staged cN. */
      names: string[];
      /** Columns named otherwise than their header (column → header), see column-names.ts. */
      sources: Map<string, string>;
    }
) & {
  /** Records we counted in the file on our side: the rows the load must put in the table. */
  records: number;
};

export async function stageJsonLines(
  tx: postgres.TransactionSql,
  stream: Readable,
  firstLine: string,
): Promise<Staged> {
  await createStage(tx, jsonStage, jsonStageColumns);
  // Binary COPY, one tuple per line: no text parser between the file and jsonb (see copy-input.ts).
  const count: RecordCount = { records: 0 };
  await copyFrom(
    tx,
    `COPY ${jsonStage} (line, doc) FROM STDIN (FORMAT binary)`,
    Readable.from(jsonLinesAsCopyBinary(stream, count), { objectMode: false }),
  );
  return { kind: 'json', table: jsonStage, keyOrder: keyOrderOf(firstLine), records: count.records };
}

/** JSON lines under on_error: skip_rows: lines that are not JSON objects become rejected rows. */
export async function stageJsonLinesRejecting(
  tx: postgres.TransactionSql,
  stream: Readable,
  firstLine: string,
): Promise<Staged> {
  await createStage(tx, jsonStage, jsonStageColumns);
  const records = await stageJsonLinesSkipping(tx, stream, jsonStage);
  return { kind: 'json', table: jsonStage, keyOrder: keyOrderOf(firstLine), records };
}

/**
 * The same staging for a file read whole: one INSERT splitting the text into lines, queued with the
 * stage's creation. Lines are cast to jsonb exactly as COPY would (a malformed one fails the file);
 * empty lines are skipped, as COPY's NULLs are.
 */
export async function stageSmallJsonLines(
  tx: postgres.TransactionSql,
  content: Buffer,
  firstLine: string,
): Promise<Staged> {
  const text = jsonTextWithoutNulEscapes(withoutBom(content).toString('utf8'));
  try {
    await Promise.all([
      createStage(tx, jsonStage, jsonStageColumns),
      tx.unsafe(
        `INSERT INTO ${jsonStage} (line, doc) SELECT line, doc FROM ${jsonLinesOf('$1')}`,
        [text],
        reused,
      ),
    ]);
  } catch (err) {
    // COPY would say which line was wrong; find it here (only on failure: the file is in memory).
    if (err instanceof postgres.PostgresError) {
      const line = firstInvalidJsonLine(text);
      if (line !== undefined) throw new LineDataError(err, line);
    }
    throw err;
  }
  return {
    kind: 'json',
    table: jsonStage,
    keyOrder: keyOrderOf(firstLine),
    records: nonBlankJsonLines(content),
  };
}

function firstInvalidJsonLine(text: string): number | undefined {
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
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

export async function stageCsv(
  tx: postgres.TransactionSql,
  stream: Readable,
  head: { firstLine: string; whole: Buffer | undefined },
  opts: CsvOptions,
  declared: DeclaredColumn[],
  /** on_error: skip_rows — records with the wrong number of fields become rejected rows. */
  rowErrors: { skipping?: boolean } = {},
): Promise<Staged> {
  const { firstLine } = head;
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
    // An empty file: nothing to stage. A first line that is empty in a file that is not is no header.
    if (head.whole === undefined || withoutBom(head.whole).toString('utf8').trim() !== '') {
      throw new FileDataError(
        `line 1 is empty: the first line must hold ${opts.header ? 'the header' : 'the first record'}`,
      );
    }
    await createStage(tx, csvStage(1), 'c1 text');
    return { kind: 'csv', table: csvStage(1), names: [], sources: new Map(), records: 0 };
  }
  // Without a header, declared columns name the fields in file order.
  const fields = opts.header
    ? header.map((h) => h.trim())
    : header.map((_, i) => declared[i]?.name ?? `c${i + 1}`);
  const seen = new Set<string>();
  for (const field of fields) {
    if (seen.has(field)) throw new FileDataError(`CSV header names column "${field}" twice`);
    seen.add(field);
  }
  const renamed = mapFieldNames(fields);
  const names = fields.map((f) => renamed.get(f) ?? f);
  const sources = new Map([...renamed].map(([field, column]) => [column, field]));
  const stageCols = names.map((_, i) => `c${i + 1}`);
  if (rowErrors.skipping) {
    // Each staged record keeps its line, for the rejected rows the load may still set aside.
    const table = `${csvStage(stageCols.length)}_lines`;
    await createStage(tx, table, ['line bigint', ...stageCols.map((c) => `${c} text`)].join(', '));
    const records = await stageCsvSkipping(tx, stream, opts, { table, width: stageCols.length });
    return { kind: 'csv', table, names, sources, records };
  }
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
  const count: RecordCount = { records: 0 };
  await copyFrom(
    tx,
    `COPY ${table} (${stageCols.join(', ')}) FROM STDIN (${options.join(', ')})`,
    Readable.from(csvForCopy(stream, { quote: opts.quote, escape: opts.escape ?? opts.quote }, count), {
      objectMode: false,
    }),
  );
  const records = Math.max(0, count.records - (opts.header ? 1 : 0));
  return { kind: 'csv', table, names, sources, records };
}
