import { createHash } from 'node:crypto';
import type postgres from 'postgres';
import type { SchemaColumn } from '../db/schema/index.js';
import { lineageColumns } from '../domain/lineage.js';

const lineage = new Set<string>(lineageColumns);

/** The columns a file was loaded with, as the history shows them: the table's order, lineage left out. */
export function schemaColumns(columns: Map<string, string>): SchemaColumn[] {
  return [...columns].filter(([name]) => !lineage.has(name)).map(([name, type]) => ({ name, type }));
}

/**
 * sha256 of the history's column list. Memoised per Map: a batch of files shares one, so hashing
 * happens once per batch (or per change of columns), not once per file. Column maps are read
 * fresh from the catalog and never changed afterwards.
 */
const fingerprints = new WeakMap<Map<string, string>, string>();
function fingerprintOf(columns: Map<string, string>): string {
  let fingerprint = fingerprints.get(columns);
  if (fingerprint === undefined) {
    fingerprint = createHash('sha256')
      .update(JSON.stringify(schemaColumns(columns)))
      .digest('hex');
    fingerprints.set(columns, fingerprint);
  }
  return fingerprint;
}

/** Committed versions, so the common case (same columns as the last file) costs no query. */
const known = new Map<string, number>();

/** The version of these columns if it is known to be committed, without a query. */
export function knownSchemaVersion(ingestionId: string, columns: Map<string, string>): number | undefined {
  return known.get(`${ingestionId}\u0000${fingerprintOf(columns)}`);
}

/**
 * The committed version of these columns, if there is one (then known to knownSchemaVersion too):
 * what a batch of small files asks once when the process has not seen these columns yet.
 */
export async function findSchemaVersion(
  q: postgres.Sql | postgres.TransactionSql,
  ingestionId: string,
  columns: Map<string, string>,
): Promise<number | undefined> {
  const fingerprint = fingerprintOf(columns);
  const [row] = await q<{ version: number }[]>`
    select version from autoloader.schema_versions
    where ingestion_id = ${ingestionId} and fingerprint = ${fingerprint}`;
  // Visible to this statement, so committed: it stays valid whatever happens to the caller's transaction.
  if (row) known.set(`${ingestionId}\u0000${fingerprint}`, row.version);
  return row?.version;
}

/**
 * The schema version number for these columns, creating the next version when they are new.
 * Runs in the file's transaction: the version row commits with the file that first used it.
 */
export async function schemaVersionFor(
  tx: postgres.TransactionSql,
  ingestionId: string,
  columns: Map<string, string>,
  firstFile: string,
  runId: string,
  /** Columns this file added under another name than their field's (column → field). */
  sourceNames: Map<string, string> = new Map(),
): Promise<number> {
  const fingerprint = fingerprintOf(columns);
  const cacheKey = `${ingestionId}\u0000${fingerprint}`;
  const cached = known.get(cacheKey);
  if (cached !== undefined) return cached;

  const found = await findSchemaVersion(tx, ingestionId, columns);
  if (found !== undefined) return found;
  // New columns are rare (a file that added some): number them under a per-ingestion lock.
  await tx`select pg_advisory_xact_lock(hashtext(${`autoloader.schema:${ingestionId}`}))`;
  const raced = await findSchemaVersion(tx, ingestionId, columns);
  if (raced !== undefined) return raced;
  // Each column's field name, when it differs: this file's, else as the versions before recorded it.
  const [previous] = await tx<{ columns: SchemaColumn[] }[]>`
    select columns from autoloader.schema_versions where ingestion_id = ${ingestionId} order by version desc limit 1`;
  const recorded = new Map(
    (previous?.columns ?? []).filter((c) => c.source_name).map((c) => [c.name, c.source_name!]),
  );
  const list = schemaColumns(columns).map((c) => {
    const source = sourceNames.get(c.name) ?? recorded.get(c.name);
    return source === undefined ? c : { ...c, source_name: source };
  });
  const [row] = await tx<{ version: number }[]>`
    insert into autoloader.schema_versions (ingestion_id, version, fingerprint, columns, first_file, run_id)
    select ${ingestionId}, coalesce(max(version), 0) + 1, ${fingerprint}, ${tx.json(list as never)}, ${firstFile}, ${runId}
    from autoloader.schema_versions where ingestion_id = ${ingestionId}
    returning version`;
  // Not cached here: this transaction may still roll back. The next file finds the committed row.
  return row!.version;
}
