import { createWriteStream } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { makeScratchDir } from '../lib/scratch.js';

/**
 * JSON arrays and Parquet are read by DuckDB (its readers are built in: nothing is downloaded) and
 * handed on as JSON lines, so every format then goes through the same staging, inference and schema
 * drift handling. Postgres parses JSON lines and CSV itself; these two it cannot.
 *
 * Parquet needs random access, so the file is first written to a temporary file; the rows are then
 * pulled from DuckDB a chunk at a time, so memory stays flat however large the file is.
 */
export type ConvertedFormat = 'json' | 'parquet';

/** DuckDB rejected the file's content (not JSON, not Parquet, truncated…): retrying will not help. */
export class ConvertError extends Error {
  override name = 'ConvertError';
}

let instance: Promise<DuckDBInstance> | undefined;

/** One DuckDB per process, small: it only converts, Postgres does the loading. */
function duckdb(): Promise<DuckDBInstance> {
  instance ??= DuckDBInstance.create(':memory:', {
    threads: '1',
    memory_limit: '256MB',
    // Autoloading would try the network for a missing extension; everything needed is built in.
    autoload_known_extensions: 'false',
    autoinstall_known_extensions: 'false',
  });
  return instance;
}

const stringLiteral = (s: string) => `'${s.replaceAll("'", "''")}'`;
const duckIdent = (s: string) => `"${s.replaceAll('"', '""')}"`;

/**
 * DuckDB's to_json keeps decimals exact, but writes a non-finite float as a bare NaN or Infinity,
 * which is not JSON: those become the strings "nan", "inf", "-inf".
 */
function parquetColumnExpression(name: string, type: string): string | undefined {
  const col = duckIdent(name);
  if (type === 'DOUBLE' || type === 'FLOAT')
    return `CASE WHEN isfinite(${col}) THEN to_json(${col}) ELSE to_json(CAST(${col} AS VARCHAR)) END`;
  return undefined;
}

async function selectFor(conn: DuckDBConnection, format: ConvertedFormat, path: string): Promise<string> {
  if (format === 'json') {
    // Each element's own text (no type guessing, no re-serialising: json() would round decimals to
    // a double), put on one line: a raw line break in JSON text can only be whitespace between
    // tokens, since inside a string it must be escaped.
    return `SELECT translate(CAST(json AS VARCHAR), chr(10) || chr(13), '  ') FROM read_json_objects(${stringLiteral(path)}, format = 'array')`;
  }
  const source = `read_parquet(${stringLiteral(path)})`;
  const described = await conn.runAndReadAll(`DESCRIBE SELECT * FROM ${source}`);
  const replaced = described
    .getRowObjects()
    .map((r) => {
      const expr = parquetColumnExpression(String(r.column_name), String(r.column_type));
      return expr ? `${expr} AS ${duckIdent(String(r.column_name))}` : undefined;
    })
    .filter((x): x is string => x !== undefined);
  const inner =
    replaced.length > 0
      ? `SELECT * REPLACE (${replaced.join(', ')}) FROM ${source}`
      : `SELECT * FROM ${source}`;
  return `SELECT CAST(to_json(r) AS VARCHAR) FROM (${inner}) r`;
}

/** DuckDB's messages name the temporary file and quote the query; keep the part about the data. */
function dataMessage(err: unknown, path: string, format: ConvertedFormat): string {
  const message = (err as Error).message
    .split('\n\nLINE ')[0]!
    .replace(/\s+Try setting format=.*$/s, '')
    .replaceAll(`file '${path}'`, 'the file')
    .replaceAll(`file "${path}"`, 'the file')
    .replaceAll(path, 'the file')
    .trim();
  return `${format === 'json' ? 'JSON array' : 'Parquet'}: ${message}`;
}

/** Streams the file's records as JSON lines (one record per line, newline-terminated). */
export async function* convertToJsonLines(format: ConvertedFormat, body: Readable): AsyncGenerator<Buffer> {
  const dir = await makeScratchDir('duckdb');
  const path = join(dir, `input.${format}`);
  let conn: DuckDBConnection | undefined;
  try {
    await pipeline(body, createWriteStream(path));
    if ((await stat(path)).size === 0) return;
    conn = await (await duckdb()).connect();
    let result: Awaited<ReturnType<DuckDBConnection['stream']>>;
    try {
      result = await conn.stream(await selectFor(conn, format, path));
    } catch (err) {
      throw new ConvertError(dataMessage(err, path, format));
    }
    for (;;) {
      let chunk: Awaited<ReturnType<typeof result.fetchChunk>>;
      try {
        chunk = await result.fetchChunk();
      } catch (err) {
        throw new ConvertError(dataMessage(err, path, format));
      }
      if (!chunk || chunk.rowCount === 0) return;
      const lines = chunk.getColumnValues(0) as (string | null)[];
      yield Buffer.from(`${lines.map((l) => l ?? 'null').join('\n')}\n`);
    }
  } finally {
    conn?.closeSync();
    await rm(dir, { recursive: true, force: true });
  }
}
