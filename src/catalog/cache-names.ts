import { createHash } from 'node:crypto';
import { isReservedTableName } from '../tenancy/ownership.js';

/**
 * Names of a database connection's cached tables (the contract's naming rule): remote table `s.t`
 * is readable at `<cache_schema>.<s>__<t>`, and each data refresh builds its version aside under
 * `<stable prefix>__v<8 hex>`, a reserved name no ingestion may claim.
 */

const maxIdentifierBytes = 63;
const versionTag = '__v';
/** The 8 hex digits that tell one version of a table from another. */
const versionSuffixPattern = /^[0-9a-f]{8}$/;

const hash8 = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 8);
/** Lower-cased, every character outside [a-z0-9_] becomes `_` (so the result is ASCII). */
const clean = (name: string) => name.toLowerCase().replace(/[^a-z0-9_]/g, '_');

/**
 * Whether `<s>__<t>` names this pair and no other: both parts unchanged by cleaning, neither holding
 * `__` (else `a__b.c` and `a.b__c` meet), `s` not ending and `t` not starting with `_` (else the
 * separator could sit one character over), and the whole a valid, unreserved identifier.
 */
function plainFits(schema: string, table: string, joined: string): boolean {
  return (
    clean(schema) === schema &&
    clean(table) === table &&
    !schema.includes('__') &&
    !table.includes('__') &&
    !schema.endsWith('_') &&
    !table.startsWith('_') &&
    /^[a-z_]/.test(joined) &&
    joined.length <= maxIdentifierBytes &&
    !isReservedTableName(joined)
  );
}

/**
 * The stable name of remote table `schema.table` in the cache schema. Deterministic. When the plain
 * form would be lossy, ambiguous, too long or reserved: a readable prefix, `_h` and 8 hex digits of
 * the original pair (the `h` keeps the result clear of the reserved `_<8 hex>` version endings).
 */
export function cachedTableName(schema: string, table: string): string {
  const joined = `${schema}__${table}`;
  if (plainFits(schema, table, joined)) return joined;
  let base = `${clean(schema)}__${clean(table)}`;
  if (!/^[a-z_]/.test(base) || base.startsWith('_al_')) base = `t${base}`;
  const tail = `_h${hash8(JSON.stringify([schema, table]))}`;
  return `${base.slice(0, maxIdentifierBytes - tail.length)}${tail}`;
}

/** A version of the cached table `stable` (a name cachedTableName made): within 63 bytes, reserved. */
export function versionedCacheName(stable: string, suffix: string): string {
  if (!versionSuffixPattern.test(suffix))
    throw new Error(`a version suffix is 8 hex digits, not "${suffix}"`);
  return `${stable.slice(0, maxIdentifierBytes - versionTag.length - suffix.length)}${versionTag}${suffix}`;
}

/**
 * Where the previous version goes when `newVersion` takes the stable name: derived from the new
 * version's name, so a retry of a swap that committed finds the same name (and its pending deletion).
 */
export function asideCacheName(stable: string, newVersion: string): string {
  return versionedCacheName(stable, hash8(`previous of ${newVersion}`));
}

/**
 * Remote column types (as format_type() writes them) that the cache keeps as they are; their text
 * form out of COPY is read back the same way. Anything else (user-defined types, enums, domains,
 * ranges, money, geometric types…) is cached as text.
 */
const keptType =
  /^(smallint|integer|bigint|real|double precision|numeric(\(\d+(,\d+)?\))?|boolean|text|character varying(\(\d+\))?|character(\(\d+\))?|bytea|date|time(\(\d\))? with(out)? time zone|timestamp(\(\d\))? with(out)? time zone|interval|uuid|json|jsonb|inet|cidr|macaddr)(\[\])*$/;

export function cacheColumnType(remoteType: string): string {
  return keptType.test(remoteType) ? remoteType : 'text';
}
