import type postgres from 'postgres';
import { AppError } from '../domain/errors.js';
import { schemaAllowed, type TenantPolicy } from './policy.js';

/**
 * Who may load into which table. Every table the service creates is recorded with its tenant and
 * the ingestion (or database connection) writing it; an ingestion may name a table only if it is
 * new, or its own tenant's and no longer written by anything else, or — with the `admin`
 * permission — an existing table the service did not create (adopted, audited).
 *
 * Every refusal is the same 409 DESTINATION_UNAVAILABLE, so a tenant cannot learn what exists.
 */
export const destinationUnavailable = () =>
  new AppError('DESTINATION_UNAVAILABLE', 'This destination table is not available to this tenant', {
    field: 'destination',
    help: 'Choose another schema.table; a table another ingestion or tenant writes, or one the service did not create, cannot be loaded',
  });

/** Names the service uses for versions of tables (swap shadows, old versions, cache versions). */
const reservedTable = /^_al_|__(old|new)_[0-9a-f]{8}$|__v[0-9a-f]{8}$/;

export function isReservedTableName(table: string): boolean {
  return reservedTable.test(table);
}

type Tx = postgres.TransactionSql;

/**
 * Claims `schema.table` for the ingestion inside the caller's transaction (with the ingestion's own
 * insert), or throws DESTINATION_UNAVAILABLE. `adopt`: an admin takes over an existing table the
 * service did not create. Returns whether an existing table was adopted.
 */
export async function claimDestination(
  tx: Tx,
  input: {
    tenantId: string;
    policy: TenantPolicy;
    ingestionId: string;
    schema: string;
    table: string;
    adopt: boolean;
  },
): Promise<{ adopted: boolean }> {
  if (!schemaAllowed(input.policy, input.schema) || isReservedTableName(input.table))
    throw destinationUnavailable();
  // Serialise claims of one name: two tenants asking at once get one answer each, not both a yes.
  await tx`select pg_advisory_xact_lock(hashtext(${`autoloader.claim:${input.schema}.${input.table}`}))`;
  const [owned] = await tx<{ tenantId: string; ingestionId: string | null; connectionId: string | null }[]>`
    select tenant_id as "tenantId", ingestion_id as "ingestionId", connection_id as "connectionId"
    from autoloader.owned_tables where schema_name = ${input.schema} and table_name = ${input.table}
    for update`;
  if (owned) {
    const free =
      owned.tenantId === input.tenantId && owned.ingestionId === null && owned.connectionId === null;
    if (!free) throw destinationUnavailable();
    await tx`
      update autoloader.owned_tables set ingestion_id = ${input.ingestionId}
      where schema_name = ${input.schema} and table_name = ${input.table}`;
    return { adopted: false };
  }
  const [exists] = await tx`
    select 1 from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = ${input.schema} and c.relname = ${input.table}`;
  if (exists && !input.adopt) throw destinationUnavailable();
  await tx`
    insert into autoloader.owned_tables (schema_name, table_name, tenant_id, ingestion_id)
    values (${input.schema}, ${input.table}, ${input.tenantId}, ${input.ingestionId})`;
  return { adopted: Boolean(exists) };
}

/** When an ingestion goes: its table stays its tenant's (another ingestion of the tenant may claim it). */
export async function releaseDestination(tx: Tx, ingestionId: string): Promise<void> {
  await tx`update autoloader.owned_tables set ingestion_id = null where ingestion_id = ${ingestionId}`;
}

/** When a table is dropped with its ingestion: nobody owns the name any more. */
export async function forgetDestination(tx: Tx, schema: string, table: string): Promise<void> {
  await tx`delete from autoloader.owned_tables where schema_name = ${schema} and table_name = ${table}`;
}

/**
 * Claims the stable name of a database connection's cached table (seed 004) for the connection,
 * inside the caller's transaction, or throws DESTINATION_UNAVAILABLE: the name must be new, or
 * already this connection's, or its own tenant's and written by nothing else. Serialised with
 * claimDestination on the same lock, so an ingestion and a connection never both get one name.
 */
export async function claimCachedTable(
  tx: Tx,
  input: { tenantId: string; connectionId: string; schema: string; table: string },
): Promise<void> {
  await tx`select pg_advisory_xact_lock(hashtext(${`autoloader.claim:${input.schema}.${input.table}`}))`;
  const [owned] = await tx<{ tenantId: string; ingestionId: string | null; connectionId: string | null }[]>`
    select tenant_id as "tenantId", ingestion_id as "ingestionId", connection_id as "connectionId"
    from autoloader.owned_tables where schema_name = ${input.schema} and table_name = ${input.table}
    for update`;
  if (owned) {
    if (owned.tenantId !== input.tenantId || owned.ingestionId !== null) throw destinationUnavailable();
    if (owned.connectionId === input.connectionId) return;
    if (owned.connectionId !== null) throw destinationUnavailable();
    await tx`
      update autoloader.owned_tables set connection_id = ${input.connectionId}
      where schema_name = ${input.schema} and table_name = ${input.table}`;
    return;
  }
  const [exists] = await tx`
    select 1 from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = ${input.schema} and c.relname = ${input.table}`;
  if (exists) throw destinationUnavailable();
  await tx`
    insert into autoloader.owned_tables (schema_name, table_name, tenant_id, connection_id)
    values (${input.schema}, ${input.table}, ${input.tenantId}, ${input.connectionId})`;
}
