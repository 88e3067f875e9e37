/**
 * Column type inference. The counting happens in Postgres over the staged file (every row, not a
 * sample); this module turns those counts into a type, so the rule is testable on its own.
 */
export type ColumnType = 'boolean' | 'bigint' | 'numeric' | 'timestamptz' | 'date' | 'jsonb' | 'text';

export interface ValueCounts {
  /** Values that are not null. */
  nonNull: number;
  booleans: number;
  integers: number;
  /** Any number, integers included. */
  numbers: number;
  timestamps: number;
  dates: number;
  /** Objects or arrays (JSON sources only). */
  nested: number;
}

/** No values seen (a key absent from every row). */
export const emptyCounts: ValueCounts = {
  nonNull: 0,
  booleans: 0,
  integers: 0,
  numbers: 0,
  timestamps: 0,
  dates: 0,
  nested: 0,
};

export function inferColumnType(c: ValueCounts): ColumnType {
  if (c.nonNull === 0) return 'text';
  if (c.nested === c.nonNull) return 'jsonb';
  // A field that is sometimes nested and sometimes scalar still keeps all its values as JSON.
  if (c.nested > 0) return 'jsonb';
  if (c.booleans === c.nonNull) return 'boolean';
  if (c.integers === c.nonNull) return 'bigint';
  if (c.numbers === c.nonNull) return 'numeric';
  if (c.dates === c.nonNull) return 'date';
  if (c.timestamps + c.dates === c.nonNull) return 'timestamptz';
  return 'text';
}

/** The SQL type a ColumnType is created with. */
export const sqlType: Record<ColumnType, string> = {
  boolean: 'boolean',
  bigint: 'bigint',
  numeric: 'numeric',
  timestamptz: 'timestamp with time zone',
  date: 'date',
  jsonb: 'jsonb',
  text: 'text',
};

// Regular expressions used inside SQL (POSIX, applied with ~ / ~*).
export const patterns = {
  integer: '^-?[0-9]{1,18}$',
  number: '^-?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][-+]?[0-9]+)?$',
  boolean: '^(true|false)$',
  date: '^[0-9]{4}-[0-9]{2}-[0-9]{2}$',
  timestamp:
    '^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}([.][0-9]+)?)?(Z|z|[+-][0-9]{2}(:?[0-9]{2})?)?$',
} as const;
