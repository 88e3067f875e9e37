import { Readable } from 'node:stream';
import { parse as parseCsvStream } from 'csv-parse';
import type postgres from 'postgres';
import type { CsvOptions, RowErrorMode } from '../domain/schemas.js';
import { FileDataError } from './common.js';
import { copyFrom } from './copy.js';
import { jsonLinesAsCopyBinary, type RecordCount } from './copy-input.js';
import { quoteLiteral } from './sql-text.js';

/**
 * The row error policy (`on_error`, as Snowflake's ON_ERROR): with `skip_rows`, rows that cannot
 * load — a malformed line, a line that is not an object, a CSV record with the wrong number of
 * fields, a value that fits no column — are set aside as rejected rows (with their line, the error
 * and their text, capped) and the file loads its good rows; past `skip_rows_max` rows or
 * `skip_rows_max_percent` of the file, the file fails as a whole. Rejected rows are first collected
 * in a stage of the file's transaction, so they commit (or roll back) with the file.
 */
export interface RowErrorPolicy {
  mode: RowErrorMode;
  maxRows?: number;
  maxPercent?: number;
}

export const rowErrorPolicyOf = (source: {
  on_error?: RowErrorMode;
  skip_rows_max?: number;
  skip_rows_max_percent?: number;
}): RowErrorPolicy => ({
  mode: source.on_error ?? 'abort_file',
  maxRows: source.skip_rows_max,
  maxPercent: source.skip_rows_max_percent,
});

export const rejectedStage = 'pg_temp._al_stage_rejected';
const rawJsonStage = 'pg_temp._al_stage_jsonl_raw';
/** A rejected row's text is kept up to this many characters. */
export const maxRejectedRawChars = 1000;

async function createTemp(tx: postgres.TransactionSql, table: string, columns: string): Promise<void> {
  await tx.unsafe(
    `CREATE TEMP TABLE IF NOT EXISTS ${table.slice('pg_temp.'.length)} (${columns}) ON COMMIT DELETE ROWS`,
  );
}

export async function createRejectedStage(tx: postgres.TransactionSql): Promise<void> {
  await createTemp(tx, rejectedStage, 'line bigint, error text, raw text');
}

/**
 * JSON lines under skip_rows: every line is staged as text (binary COPY, one tuple per line), then
 * the objects move on to the JSON stage and everything else becomes a rejected row.
 */
export async function stageJsonLinesSkipping(
  tx: postgres.TransactionSql,
  stream: Readable,
  jsonStage: string,
): Promise<number> {
  await createTemp(tx, rawJsonStage, 'line bigint, raw text');
  await createRejectedStage(tx);
  const count: RecordCount = { records: 0 };
  await copyFrom(
    tx,
    `COPY ${rawJsonStage} (line, raw) FROM STDIN (FORMAT binary)`,
    streamOf(jsonLinesAsCopyBinary(stream, count, { asText: true })),
  );
  const ok = `pg_input_is_valid(raw, 'jsonb') AND jsonb_typeof(raw::jsonb) = 'object'`;
  await tx.unsafe(
    `INSERT INTO ${jsonStage} (line, doc) SELECT line, raw::jsonb FROM ${rawJsonStage} WHERE raw IS NOT NULL AND ${ok}`,
  );
  await tx.unsafe(
    `INSERT INTO ${rejectedStage} (line, error, raw)
     SELECT line,
            CASE WHEN NOT pg_input_is_valid(raw, 'jsonb') THEN (pg_input_error_info(raw, 'jsonb')).message
                 ELSE 'expected a JSON object, found ' || jsonb_typeof(raw::jsonb) END,
            left(raw, ${maxRejectedRawChars})
     FROM ${rawJsonStage} WHERE raw IS NOT NULL AND NOT (${ok})`,
  );
  return count.records;
}

/**
 * CSV under skip_rows: read by csv-parse (Postgres' COPY cannot set aside a record with the wrong
 * number of fields), good records staged with their line by binary COPY, the others rejected.
 */
export async function stageCsvSkipping(
  tx: postgres.TransactionSql,
  stream: Readable,
  opts: CsvOptions,
  stage: { table: string; width: number },
): Promise<number> {
  await createRejectedStage(tx);
  const rejected: { line: number; error: string; raw: string }[] = [];
  let records = 0;
  const parser = stream.pipe(
    parseCsvStream({
      delimiter: opts.delimiter,
      quote: opts.quote,
      escape: opts.escape ?? opts.quote,
      bom: true,
      relax_column_count: true,
      skip_empty_lines: false,
      info: true,
      raw: true,
      // An unquoted field equal to the null string is NULL, as COPY reads it.
      cast: (value, ctx) => (!ctx.quoting && value === opts.null_string ? null : value),
    }),
  );
  stream.once('error', (err) => parser.destroy(err));
  async function* tuples() {
    yield Buffer.concat([Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1'), Buffer.alloc(8)]);
    let first = true;
    for await (const item of parser as AsyncIterable<{
      record: (string | null)[];
      info: { lines: number };
      raw: string;
    }>) {
      if (first && opts.header) {
        first = false;
        continue;
      }
      first = false;
      records++;
      const line = item.info.lines;
      if (item.record.length !== stage.width) {
        rejected.push({
          line,
          error: `expected ${stage.width} fields, found ${item.record.length}`,
          raw: item.raw.replace(/\r?\n$|\r$/, '').slice(0, maxRejectedRawChars),
        });
        continue;
      }
      yield binaryTuple(line, item.record);
    }
    yield Buffer.from([0xff, 0xff]);
  }
  const columns = ['line', ...Array.from({ length: stage.width }, (_, i) => `c${i + 1}`)];
  await copyFrom(
    tx,
    `COPY ${stage.table} (${columns.join(', ')}) FROM STDIN (FORMAT binary)`,
    streamOf(tuples()),
  );
  if (rejected.length > 0) {
    await tx.unsafe(
      `INSERT INTO ${rejectedStage} (line, error, raw) SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[])`,
      [rejected.map((r) => r.line), rejected.map((r) => r.error), rejected.map((r) => r.raw)],
    );
  }
  return records;
}

/** One binary COPY tuple: the line, then text fields (null for NULL). */
function binaryTuple(line: number, fields: (string | null)[]): Buffer {
  const parts: Buffer[] = [];
  const head = Buffer.alloc(2 + 4 + 8);
  head.writeUInt16BE(fields.length + 1, 0);
  head.writeInt32BE(8, 2);
  head.writeBigInt64BE(BigInt(line), 6);
  parts.push(head);
  for (const f of fields) {
    const len = Buffer.alloc(4);
    if (f === null) {
      len.writeInt32BE(-1, 0);
      parts.push(len);
      continue;
    }
    // Postgres text cannot hold NUL: such a value is rejected by the cast check, not the COPY.
    const value = Buffer.from(f.replaceAll('\u0000', '\ufffd'), 'utf8');
    len.writeInt32BE(value.length, 0);
    parts.push(len, value);
  }
  return Buffer.concat(parts);
}

function streamOf(gen: AsyncGenerator<Buffer>): Readable {
  return Readable.from(gen, { objectMode: false });
}

/**
 * Rejects the staged rows whose values fit no column (under skip_rows): `misfit` is a SQL condition
 * over a staged row, `message` a SQL expression naming the field and value; `rowText` the row as text.
 * The rejected rows leave the stage.
 */
export async function rejectMisfits(
  tx: postgres.TransactionSql,
  staged: { table: string; kind: 'json' | 'csv' },
  checks: { condition: string; message: string }[],
  rowText: string,
): Promise<void> {
  if (checks.length === 0) return;
  const any = checks.map((c) => `(${c.condition})`).join(' OR ');
  const message = `coalesce(${checks.map((c) => `CASE WHEN ${c.condition} THEN ${c.message} END`).join(', ')})`;
  await tx.unsafe(
    `INSERT INTO ${rejectedStage} (line, error, raw)
     SELECT line, ${message}, left(${rowText}, ${maxRejectedRawChars}) FROM ${staged.table}
     WHERE ${staged.kind === 'json' ? 'doc IS NOT NULL AND ' : ''}(${any})`,
  );
  await tx.unsafe(`DELETE FROM ${staged.table} WHERE ${any}`);
}

/** Rejected rows so far in this file's transaction. */
export async function countRejected(tx: postgres.TransactionSql): Promise<number> {
  const [row] = await tx.unsafe<{ n: number }[]>(`SELECT count(*)::int AS n FROM ${rejectedStage}`);
  return row?.n ?? 0;
}

/** Past the policy's limits the file fails as a whole, naming the first rejected row. */
export async function enforceLimits(
  tx: postgres.TransactionSql,
  policy: RowErrorPolicy,
  total: number,
): Promise<number> {
  const rejected = await countRejected(tx);
  if (rejected === 0) return 0;
  const overCount = policy.maxRows !== undefined && rejected > policy.maxRows;
  const overShare =
    policy.maxPercent !== undefined && total > 0 && (rejected * 100) / total > policy.maxPercent;
  if (overCount || overShare) {
    const [first] = await tx.unsafe<{ line: number; error: string }[]>(
      `SELECT line::float8 AS line, error FROM ${rejectedStage} ORDER BY line LIMIT 1`,
    );
    const limit = overCount
      ? `skip_rows_max (${policy.maxRows})`
      : `skip_rows_max_percent (${policy.maxPercent}%)`;
    throw new FileDataError(
      `${rejected} of ${total} rows rejected, more than ${limit}; the first, line ${first?.line}: ${first?.error}`,
    );
  }
  return rejected;
}

/**
 * The file's rejected rows, kept in the ledger's table (its earlier load's went with the success
 * statement, see successStatement), in the file's transaction.
 */
export async function keepRejected(
  tx: postgres.TransactionSql,
  file: { ingestionId: string; fileId: number; filePath: string; runId: string },
): Promise<void> {
  await tx.unsafe(
    `INSERT INTO autoloader.rejected_rows (ingestion_id, file_id, file_path, run_id, line, error, raw)
     SELECT $1, $2, $3, $4, line, error, raw FROM ${rejectedStage} ORDER BY line`,
    [file.ingestionId, file.fileId, file.filePath, file.runId],
  );
}

export const describeMisfit = (field: string, valueText: string, type: string) =>
  `'field ' || ${quoteLiteral(JSON.stringify(field))} || ': value "' || left(${valueText}, 100) || '" is not a valid ' || ${quoteLiteral(type)}`;
