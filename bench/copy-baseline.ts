/**
 * The loading limit the run is compared with: the same rows as CSV, from local disk, into a table
 * with the run's column types, by `psql \copy` (Debian's client) or — where no psql is installed —
 * postgres.js `COPY … FROM STDIN` fed the file, which PERF-NOTES measured as equally fast.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createReadStream, existsSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import type { Sql } from '../src/db/client.js';
import { qualified, quoteIdent } from '../src/load/sql-text.js';

const psqlPath = '/usr/bin/psql';

export type CopyClient = 'psql' | 'postgres.js';

export function chooseCopyClient(): CopyClient {
  const forced = process.env.BENCH_COPY_CLIENT;
  if (forced === 'psql' || forced === 'postgres.js') return forced;
  if (forced) throw new Error(`BENCH_COPY_CLIENT must be psql or postgres.js, not ${forced}`);
  return existsSync(psqlPath) ? 'psql' : 'postgres.js';
}

export async function psqlVersion(): Promise<string | undefined> {
  if (!existsSync(psqlPath)) return undefined;
  const child = spawn(psqlPath, ['--version'], { stdio: ['ignore', 'pipe', 'ignore'] });
  let out = '';
  child.stdout.on('data', (c: Buffer) => {
    out += c.toString();
  });
  await once(child, 'close');
  return out.trim();
}

/**
 * Creates `schema.name` with the destination's columns and types (read from information_schema
 * after the run created it), without the lineage columns: `\copy` has no lineage to write.
 */
export async function createCopyTarget(
  sql: Sql,
  source: { schema: string; table: string },
  name: string,
  columns: readonly string[],
): Promise<void> {
  const rows = await sql<{ name: string; type: string }[]>`
    select column_name as name, data_type as type from information_schema.columns
    where table_schema = ${source.schema} and table_name = ${source.table}
    order by ordinal_position`;
  const types = new Map(rows.map((r) => [r.name, r.type]));
  const missing = columns.filter((c) => !types.has(c));
  if (missing.length > 0) throw new Error(`${source.table} lacks columns ${missing.join(', ')}`);
  const target = qualified(source.schema, name);
  await sql.unsafe(`DROP TABLE IF EXISTS ${target}`);
  await sql.unsafe(
    `CREATE TABLE ${target} (${columns.map((c) => `${quoteIdent(c)} ${types.get(c)}`).join(', ')})`,
  );
}

/**
 * Creates `schema.name` as a copy of the destination's shape: its columns, the lineage columns and
 * the `_source_file` index (LIKE … INCLUDING DEFAULTS INCLUDING INDEXES). `\copy` of the data
 * columns then also writes what every row of ours carries — the lineage values (from defaults: a
 * file URI and a run id of the length ours have) and their index entries — so the gap between this
 * baseline and the bare table is what the table's shape costs, and the gap between the run and this
 * baseline is what the loader costs.
 */
export async function createShapedCopyTarget(
  sql: Sql,
  source: { schema: string; table: string },
  name: string,
): Promise<void> {
  const target = qualified(source.schema, name);
  const [lineage] = await sql.unsafe<{ file: string; run: string }[]>(
    `SELECT _source_file AS file, _run_id AS run FROM ${qualified(source.schema, source.table)} LIMIT 1`,
  );
  if (!lineage) throw new Error(`${source.table} is empty: no lineage to copy the shape of`);
  const literal = (v: string) => `'${v.replaceAll("'", "''")}'`;
  await sql.unsafe(`DROP TABLE IF EXISTS ${target}`);
  await sql.unsafe(
    `CREATE TABLE ${target} (LIKE ${qualified(source.schema, source.table)} INCLUDING DEFAULTS INCLUDING INDEXES)`,
  );
  await sql.unsafe(
    `ALTER TABLE ${target} ALTER COLUMN _source_file SET DEFAULT ${literal(lineage.file)},
       ALTER COLUMN _run_id SET DEFAULT ${literal(lineage.run)}`,
  );
}

/** One COPY stream: loads `files` one after the other into `schema.table`. */
export async function copyFiles(opts: {
  client: CopyClient;
  sql: Sql;
  databaseUrl: string;
  target: { schema: string; table: string };
  columns: readonly string[];
  files: string[];
}): Promise<void> {
  const target = qualified(opts.target.schema, opts.target.table);
  const columnList = opts.columns.map(quoteIdent).join(', ');
  if (opts.client === 'psql') {
    const commands = opts.files.flatMap((f) => [
      '-c',
      `\\copy ${target} (${columnList}) FROM '${f.replaceAll("'", "''")}' WITH (FORMAT csv)`,
    ]);
    const child = spawn(
      psqlPath,
      ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', opts.databaseUrl, ...commands],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    const [code] = (await once(child, 'close')) as [number | null];
    if (code !== 0) throw new Error(`psql \\copy failed (code ${code}): ${stderr}`);
    return;
  }
  const conn = await opts.sql.reserve();
  try {
    for (const f of opts.files) {
      const writable = await conn.unsafe(`COPY ${target} (${columnList}) FROM STDIN (FORMAT csv)`).writable();
      await pipeline(createReadStream(f, { highWaterMark: 1 << 20 }), writable);
    }
  } finally {
    conn.release();
  }
}
