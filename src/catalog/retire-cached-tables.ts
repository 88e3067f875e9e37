import type postgres from 'postgres';
import { newId } from '../lib/ids.js';
import { qualified, quoteIdent } from '../load/sql-text.js';
import { asideCacheName } from './cache-names.js';

export interface RetiredTable {
  deletionId: string;
  table: string;
  /** ISO 8601: it travels through workflow history. */
  dueAt: string;
}

/**
 * When a database connection goes, or a schema refresh finds a remote table gone (seed 004): inside the caller's transaction, each cached table it
 * owns is renamed aside to a reserved name and queued for deletion after the grace period, and its
 * stable name is released, so a new connection of the tenant can cache into it again. Renamed first,
 * not queued under the stable name: a later deletion must never drop a table someone else made there.
 */
export async function retireCachedTables(
  tx: postgres.TransactionSql,
  input: {
    tenantId: string;
    connectionId: string;
    graceSeconds: number;
    /** Only these stable names (of tables a schema refresh found gone); default: all of them. */
    only?: string[];
    /** Tells this retirement's names from another's. */
    reason: string;
  },
): Promise<RetiredTable[]> {
  const owned = await tx<{ schemaName: string; tableName: string }[]>`
    delete from autoloader.owned_tables
    where connection_id = ${input.connectionId}
      ${input.only ? tx`and table_name in (select jsonb_array_elements_text(${JSON.stringify(input.only)}::text::jsonb))` : tx``}
    returning schema_name as "schemaName", table_name as "tableName"`;
  const retired: RetiredTable[] = [];
  for (const o of owned) {
    const [exists] = await tx`
      select 1 from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = ${o.schemaName} and c.relname = ${o.tableName} and c.relkind in ('r', 'p')`;
    if (!exists) continue;
    const aside = asideCacheName(o.tableName, input.reason);
    await tx.unsafe(`ALTER TABLE ${qualified(o.schemaName, o.tableName)} RENAME TO ${quoteIdent(aside)}`);
    const deletionId = newId('del');
    const [row] = await tx<{ dueAt: Date }[]>`
      insert into autoloader.pending_deletions (id, tenant_id, schema_name, table_name, due_at)
      values (${deletionId}, ${input.tenantId}, ${o.schemaName}, ${aside}, now() + make_interval(secs => ${input.graceSeconds}))
      returning due_at as "dueAt"`;
    retired.push({ deletionId, table: `${o.schemaName}.${aside}`, dueAt: row!.dueAt.toISOString() });
  }
  return retired;
}
