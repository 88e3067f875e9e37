import type postgres from 'postgres';
import { lineageColumnsDdl } from '../domain/lineage.js';
import { qualified, quoteIdent } from '../load/sql-text.js';
import { type CarriedOver, nothingCarried, swapWithCarryOver } from './carry-over.js';

/**
 * A destination table and everything done to it outside the row path: reading its columns, creating
 * it, adding and widening columns, its size, dropping it, swapping a new version in, removing a
 * file's rows. Names reach SQL only quoted (they were validated as identifiers at the API).
 */
type Q = postgres.Sql | postgres.TransactionSql;

export interface TableRef {
  schema: string;
  table: string;
}

export const describeTable = (t: TableRef) => `${t.schema}.${t.table}`;

/**
 * The table's columns (name → SQL type), or undefined when it does not exist. Read with plain catalog
 * scans rather than to_regclass(): those see every commit (each statement takes a fresh snapshot),
 * while the relation-name cache may still hold a "no such table" answer from before this transaction
 * waited on the DDL lock.
 */
export async function readColumns(q: Q, t: TableRef): Promise<Map<string, string> | undefined> {
  const rows = await q<{ name: string | null; type: string | null }[]>`
    select a.attname as name, format_type(a.atttypid, a.atttypmod) as type
    from pg_class c
    join pg_namespace n on n.oid = c.relnamespace
    left join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
    where n.nspname = ${t.schema} and c.relname = ${t.table} and c.relkind in ('r', 'p')
    order by a.attnum`;
  if (rows.length === 0) return undefined;
  return new Map(rows.filter((r) => r.name !== null).map((r) => [r.name!, r.type!]));
}

export async function tableExists(q: Q, t: TableRef): Promise<boolean> {
  const rows = await q`
    select 1 from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = ${t.schema} and c.relname = ${t.table} and c.relkind in ('r', 'p')`;
  return rows.length > 0;
}

/** DDL on a destination table is serialised by this lock, held to the end of the transaction. */
export async function lockDdl(tx: postgres.TransactionSql, t: TableRef): Promise<void> {
  await tx`select pg_advisory_xact_lock(hashtext(${`autoloader.ddl:${t.schema}.${t.table}`}))`;
}

/**
 * Two first loads into different tables of a new schema would both try to create it (and one would
 * fail on pg_namespace's unique index): creating a schema is serialised on its own lock.
 */
export async function ensureSchema(tx: postgres.TransactionSql, schema: string): Promise<void> {
  const exists = async () => (await tx`select 1 from pg_namespace where nspname = ${schema}`).length > 0;
  if (await exists()) return;
  await tx`select pg_advisory_xact_lock(hashtext(${`autoloader.ddl-schema:${schema}`}))`;
  if (await exists()) return;
  await tx.unsafe(`CREATE SCHEMA ${quoteIdent(schema)}`);
}

/** Creates the table with these columns and the lineage columns (its schema too, if new). */
export async function createTable(
  tx: postgres.TransactionSql,
  t: TableRef,
  columns: { name: string; type: string }[],
): Promise<void> {
  const table = qualified(t.schema, t.table);
  await ensureSchema(tx, t.schema);
  const cols = columns.map((c) => `${quoteIdent(c.name)} ${c.type}`);
  cols.push(...lineageColumnsDdl);
  await tx.unsafe(`CREATE TABLE ${table} (${cols.join(', ')})`);
  // Lineage is how a file's rows are found again: replaced on a new ETag, removed on reprocess.
  await tx.unsafe(`CREATE INDEX ON ${table} (_source_file)`);
}

export async function addColumns(
  tx: postgres.TransactionSql,
  t: TableRef,
  columns: { name: string; type: string }[],
): Promise<void> {
  if (columns.length === 0) return;
  await tx.unsafe(
    `ALTER TABLE ${qualified(t.schema, t.table)} ${columns.map((c) => `ADD COLUMN IF NOT EXISTS ${quoteIdent(c.name)} ${c.type}`).join(', ')}`,
  );
}

/** Changes column types (always to a more general one: the old values are text the new type reads). */
export async function widenColumnTypes(
  tx: postgres.TransactionSql,
  t: TableRef,
  columns: { name: string; type: string }[],
): Promise<void> {
  if (columns.length === 0) return;
  await lockDdl(tx, t);
  await tx.unsafe(
    `ALTER TABLE ${qualified(t.schema, t.table)} ${columns
      .map(
        (c) =>
          `ALTER COLUMN ${quoteIdent(c.name)} TYPE ${c.type} USING ${quoteIdent(c.name)}::text::${c.type}`,
      )
      .join(', ')}`,
  );
}

export interface TableStats {
  table_name: string;
  table_existed: boolean;
  table_size_gb?: number;
  row_count?: number;
}

const bytesPerGb = 1024 ** 3;

/** Size and row count (exact below a million rows, the planner's estimate above). */
export async function tableStats(q: Q, t: TableRef): Promise<TableStats> {
  const table_name = describeTable(t);
  const [rel] = await q<{ oid: number; bytes: number; estimate: number }[]>`
    select c.oid::int as oid, pg_total_relation_size(c.oid)::float8 as bytes, c.reltuples::float8 as estimate
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = ${t.schema} and c.relname = ${t.table} and c.relkind in ('r', 'p')`;
  if (!rel) return { table_name, table_existed: false };
  let rows = rel.estimate;
  if (rows < 1_000_000) {
    const [c] = await q.unsafe(`select count(*)::float8 as n from ${qualified(t.schema, t.table)}`);
    rows = Number(c?.n ?? 0);
  }
  return {
    table_name,
    table_existed: true,
    table_size_gb: Math.round((rel.bytes / bytesPerGb) * 1000) / 1000,
    row_count: Math.max(0, Math.round(rows)),
  };
}

/** Drops the table; idempotent (`table_existed: false` when there was none). */
export async function dropTable(tx: postgres.TransactionSql, t: TableRef): Promise<TableStats> {
  const stats = await tableStats(tx, t);
  if (stats.table_existed) await tx.unsafe(`DROP TABLE IF EXISTS ${qualified(t.schema, t.table)}`);
  return stats;
}

/** A version of a table under a derived name that stays within Postgres' 63-byte limit. */
export function versionedName(table: string, tag: 'new' | 'old', suffix: string): string {
  return `${table.slice(0, 40)}__${tag}_${suffix}`;
}

/**
 * Seed 004's atomic swap, inside the caller's transaction: the live table (if any) is renamed aside
 * to `oldName`, the new version takes the live name, with what users added to the live table carried
 * over and the views reading it re-pointed (src/destination/carry-over.ts). An empty new version
 * (nothing loaded) is created first, so the swap's result is always a table. Throws SwapRefused when
 * the swap would break readers; call it in a savepoint, so that nothing of it commits then.
 */
export async function swapIn(
  tx: postgres.TransactionSql,
  live: TableRef,
  newVersion: string,
  oldName: string,
): Promise<{ hadLive: boolean; carried: CarriedOver }> {
  const target = { schema: live.schema, table: newVersion };
  if (!(await tableExists(tx, target))) {
    await tx.unsafe(
      `CREATE TABLE IF NOT EXISTS ${qualified(live.schema, newVersion)} (${lineageColumnsDdl.join(', ')})`,
    );
    await tx.unsafe(`CREATE INDEX ON ${qualified(live.schema, newVersion)} (_source_file)`);
  }
  if (!(await tableExists(tx, live))) {
    await tx.unsafe(`ALTER TABLE ${qualified(live.schema, newVersion)} RENAME TO ${quoteIdent(live.table)}`);
    return { hadLive: false, carried: nothingCarried() };
  }
  return { hadLive: true, carried: await swapWithCarryOver(tx, live, target, oldName) };
}

/** Removes the rows these files loaded (by lineage); returns how many. */
export async function deleteRowsOfFiles(
  tx: postgres.TransactionSql,
  t: TableRef,
  paths: string[],
): Promise<number> {
  const r = await tx.unsafe(
    `DELETE FROM ${qualified(t.schema, t.table)} WHERE _source_file = ANY($1::text[])`,
    [paths],
  );
  return r.count;
}

/**
 * `statement` (one that deletes files' earlier rows by lineage) between two settings, for the
 * caller to await together (Promise.all sends them in this order, in one round trip): the planner
 * takes the lineage index for it whatever the table's statistics say, and nothing else of the
 * load's transaction is planned that way. The statistics are often wrong while a table fills:
 * analysed when it held one file's rows, a table seems to hold all its rows under every file, and
 * the DELETE of a batch's earlier rows read the whole table for every batch (measured in the
 * bench: 10,000 small files took 27 s instead of 12, the statement 85 ms a batch, until autovacuum
 * came by).
 */
export function byLineageIndex<T extends postgres.Row[]>(
  tx: postgres.TransactionSql,
  statement: postgres.PendingQuery<T>,
): [postgres.PendingQuery<postgres.Row[]>, postgres.PendingQuery<T>, postgres.PendingQuery<postgres.Row[]>] {
  return [
    tx.unsafe('SET LOCAL enable_seqscan = off'),
    statement,
    tx.unsafe('SET LOCAL enable_seqscan TO DEFAULT'),
  ];
}

/** The statement removing one file's earlier rows, sent with its load (prepared: it runs per file). */
export function deleteRowsOfFile(
  tx: postgres.TransactionSql,
  t: TableRef,
  path: string,
): postgres.PendingQuery<postgres.Row[]> {
  return tx.unsafe(`DELETE FROM ${qualified(t.schema, t.table)} WHERE _source_file = $1`, [path], {
    prepare: true,
  });
}

/** Drops a table version (a discarded shadow, an old version past its grace period); idempotent. */
export async function dropIfExists(tx: postgres.TransactionSql, t: TableRef): Promise<void> {
  await tx.unsafe(`DROP TABLE IF EXISTS ${qualified(t.schema, t.table)}`);
}
