import { createHash } from 'node:crypto';
import { systemColumns } from '../domain/lineage.js';

/**
 * Column names for field names that cannot be columns as they are. A field never vanishes because
 * of its name: it gets a column under a deterministic name, and the schema history keeps its
 * original name (`source_name`).
 * - `""` (an empty key) → `_empty_key`;
 * - a name of the service's own columns (`_source_file`, `_ingested_at`, `_run_id`, `_rescued_data`)
 *   → `<name>_data` (`_source_file_data`);
 * - longer than Postgres' 63 bytes → its first bytes (cut on a character boundary) + `_` + 8 hex
 *   characters of its sha256, so two long names sharing a prefix stay apart;
 * - if the result is taken (by another field of the file, or another mapping), the hash form.
 */
export const maxIdentifierBytes = 63;

const hash8 = (name: string) => createHash('sha256').update(name).digest('hex').slice(0, 8);

/** The longest prefix of `name` within `bytes` UTF-8 bytes, not splitting a character. */
function prefixWithin(name: string, bytes: number): string {
  let out = '';
  let used = 0;
  for (const ch of name) {
    const n = Buffer.byteLength(ch, 'utf8');
    if (used + n > bytes) break;
    out += ch;
    used += n;
  }
  return out;
}

const hashed = (name: string, base: string) => `${prefixWithin(base, maxIdentifierBytes - 9)}_${hash8(name)}`;

/** The column a field name needs, ignoring collisions; the name itself when it can be a column. */
export function columnNameFor(name: string): string {
  const clean = name.replaceAll('\u0000', '_');
  if (clean === '') return '_empty_key';
  if (systemColumns.has(clean)) return `${clean}_data`;
  if (Buffer.byteLength(clean, 'utf8') > maxIdentifierBytes) return hashed(name, clean);
  return clean;
}

/**
 * Column names for the field names of one file (map: field name → column), the fields that keep
 * their name left out. A mapped name another field of the file already has takes the hash form.
 */
export function mapFieldNames(names: string[]): Map<string, string> {
  const out = new Map<string, string>();
  const used = new Set(names.filter((n) => columnNameFor(n) === n));
  for (const name of [...names].sort()) {
    const plain = columnNameFor(name);
    if (plain === name) continue;
    const column = used.has(plain) ? hashed(name, plain) : plain;
    out.set(name, column);
    used.add(column);
  }
  return out;
}
