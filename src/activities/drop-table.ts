import type postgres from 'postgres';
import { qualified } from '../load/sql-text.js';
import type { ActivityDeps } from './deps.js';
import { loadIngestionContext } from './ingestion-context.js';

export interface TableStats {
  table_name: string;
  table_existed: boolean;
  table_size_gb?: number;
  row_count?: number;
}

const bytesPerGb = 1024 ** 3;

/** Size and row count of an ingestion's destination table (exact count below a million rows, the planner's estimate above). */
export async function tableStats(
  sql: postgres.Sql | postgres.TransactionSql,
  schema: string,
  table: string,
): Promise<TableStats> {
  const table_name = `${schema}.${table}`;
  const [rel] = await sql<{ oid: number; bytes: number; estimate: number }[]>`
    select c.oid::int as oid, pg_total_relation_size(c.oid)::float8 as bytes, c.reltuples::float8 as estimate
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = ${schema} and c.relname = ${table} and c.relkind in ('r', 'p')`;
  if (!rel) return { table_name, table_existed: false };
  let rows = rel.estimate;
  if (rows < 1_000_000) {
    const [c] = await sql.unsafe(`select count(*)::float8 as n from ${qualified(schema, table)}`);
    rows = Number(c?.n ?? 0);
  }
  return {
    table_name,
    table_existed: true,
    table_size_gb: Math.round((rel.bytes / bytesPerGb) * 1000) / 1000,
    row_count: Math.max(0, Math.round(rows)),
  };
}

/** Drops the destination table; idempotent (`table_existed: false` when there was none). */
export function makeDropTable({ sql, stores }: ActivityDeps) {
  return async function dropTable(input: { ingestionId: string }): Promise<TableStats> {
    const { destination } = await loadIngestionContext(sql, stores, input.ingestionId);
    return sql.begin(async (tx) => {
      const stats = await tableStats(tx, destination.schema, destination.table);
      if (stats.table_existed)
        await tx.unsafe(`DROP TABLE IF EXISTS ${qualified(destination.schema, destination.table)}`);
      return stats;
    });
  };
}
