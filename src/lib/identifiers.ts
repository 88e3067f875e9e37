import { lineageColumns } from '../domain/lineage.js';

/**
 * Destination schema and table names are chosen by users and end up in DDL. They are restricted to
 * plain lower-case identifiers (no quoting surprises, no case folding) and are still quoted by the
 * driver wherever they reach SQL.
 */
const plainIdentifier = /^[a-z_][a-z0-9_]{0,62}$/;

const reserved = new Set(['autoloader', 'pg_catalog', 'information_schema', 'pg_toast', 'drizzle']);

export function isPlainIdentifier(name: string): boolean {
  return plainIdentifier.test(name);
}

export function isAllowedDestinationSchema(name: string): boolean {
  return isPlainIdentifier(name) && !reserved.has(name) && !name.startsWith('pg_');
}

/**
 * Column names come from the data (JSON keys, CSV headers). Postgres accepts any quoted name up to
 * 63 bytes without NUL; we keep them as they are so users find their fields under the same name.
 */
export function columnNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'empty column name';
  if (name.includes('\u0000')) return 'column name contains a NUL character';
  if (Buffer.byteLength(name, 'utf8') > 63)
    return `column name "${name.slice(0, 40)}…" is longer than 63 bytes`;
  if ((lineageColumns as readonly string[]).includes(name))
    return `column name "${name}" is reserved for lineage`;
  return undefined;
}
