import { z } from 'zod';
import { columnNameProblem, isAllowedDestinationSchema, isPlainIdentifier } from '../lib/identifiers.js';

/**
 * jsonl: one JSON value per line; json: a JSON array of records; csv; parquet.
 * A `.gz` suffix on the file name means gzip, whatever the format.
 */
export const formats = ['jsonl', 'json', 'csv', 'parquet'] as const;
export const schemaModes = ['add_columns', 'rescue', 'fail'] as const;
export type SchemaMode = (typeof schemaModes)[number];
export const rowErrorModes = ['abort_file', 'skip_rows'] as const;
export type RowErrorMode = (typeof rowErrorModes)[number];
export type FileFormat = (typeof formats)[number];

/**
 * One printable ASCII character (or tab): Postgres' COPY takes single-byte delimiters, quotes and
 * escapes only (a multi-byte "€" is refused there, which would fail every file), and a line break
 * cannot be one of them.
 */
const csvChar = z
  .string()
  .regex(/^[\t\x20-\x7e]$/, 'must be one ASCII character (a tab, or a printable one)');

export const csvOptionsSchema = z
  .object({
    header: z.boolean().default(true),
    delimiter: csvChar.default(','),
    quote: csvChar.default('"'),
    escape: csvChar.optional().describe('defaults to the quote character'),
    null_string: z
      .string()
      .max(100)
      .regex(/^[^\r\n]*$/, 'must not contain a line break')
      .default('')
      .describe('unquoted value read as NULL'),
  })
  .strict()
  .refine((o) => o.delimiter !== o.quote, { message: 'delimiter and quote must differ', path: ['quote'] });
export type CsvOptions = z.infer<typeof csvOptionsSchema>;

/**
 * Types a declared column may have: the ones inference produces plus the common narrower ones.
 * A closed list (with numeric's precision and varchar's length as the only parameters), because the
 * type is written into DDL.
 */
const columnTypes = [
  'text',
  'boolean',
  'smallint',
  'integer',
  'bigint',
  'numeric',
  'real',
  'double precision',
  'date',
  'timestamp',
  'timestamptz',
  'time',
  'interval',
  'uuid',
  'jsonb',
  'bytea',
] as const;
const parameterisedType = /^(numeric\(([1-9][0-9]{0,2})(, ?[0-9]{1,3})?\)|varchar\([1-9][0-9]{0,6}\))$/;

export const declaredColumnSchema = z.object({
  name: z
    .string()
    .min(1)
    .refine((n) => columnNameProblem(n) === undefined, {
      error: (issue) => columnNameProblem(String(issue.input)) ?? 'invalid column name',
    }),
  type: z
    .string()
    .transform((t) => t.trim().toLowerCase().replace(/\s+/g, ' '))
    .refine(
      (t) => (columnTypes as readonly string[]).includes(t) || parameterisedType.test(t),
      `must be one of ${columnTypes.join(', ')}, numeric(p,s) or varchar(n)`,
    ),
});
export type DeclaredColumn = z.infer<typeof declaredColumnSchema>;

export const sourceSchema = z.strictObject({
  bucket: z.string().min(1).optional().describe('required for s3 connections'),
  prefix: z.string().default(''),
  pattern: z.string().min(1).default('**').describe('glob matched against the key below the prefix'),
  format: z.enum(formats),
  format_options: csvOptionsSchema.default({ header: true, delimiter: ',', quote: '"', null_string: '' }),
  since: z.iso.datetime({ offset: true }).optional().describe('ignore files modified before this time'),
  schema_mode: z
    .enum(schemaModes)
    .default('add_columns')
    .describe(
      'add_columns: new fields become columns; rescue: new fields and values that do not fit go to _rescued_data; fail: either fails the file, naming the field',
    ),
  on_error: z
    .enum(rowErrorModes)
    .default('abort_file')
    .describe(
      'abort_file: a row that cannot load fails its file; skip_rows: such rows (a malformed line, a line that is not an object, a CSV record with the wrong number of fields, a value that fits no column) are set aside as rejected rows (GET /ingestions/{id}/rejected-rows) and the file loads the others',
    ),
  skip_rows_max: z
    .int()
    .min(0)
    .optional()
    .describe('with skip_rows: a file with more rejected rows than this fails as a whole'),
  skip_rows_max_percent: z
    .number()
    .min(0)
    .max(100)
    .optional()
    .describe(
      'with skip_rows: a file with a larger share of rejected rows than this (0-100) fails as a whole',
    ),
  columns: z
    .array(declaredColumnSchema)
    .min(1)
    .max(1600)
    .refine((cols) => new Set(cols.map((c) => c.name)).size === cols.length, 'column names must be unique')
    .optional()
    .describe(
      'Explicit schema: these columns are created with these types instead of inferred ones. Fields the list does not name follow schema_mode. For CSV without a header the list names the columns in file order.',
    ),
});
export type Source = z.infer<typeof sourceSchema>;

/**
 * A PATCH of a source: the same fields, each optional and WITHOUT its default (a default here would
 * overwrite the stored value of every field the request did not send), unknown fields refused.
 */
export const sourcePatchSchema = z.strictObject({
  ...optionalWithoutDefaults(sourceSchema.shape),
  format_options: z.strictObject(optionalWithoutDefaults(csvOptionsSchema.shape)).optional(),
}) as unknown as z.ZodType<{ [K in keyof Source]?: unknown }>;

function optionalWithoutDefaults(shape: Record<string, z.ZodType>): Record<string, z.ZodType> {
  return Object.fromEntries(
    Object.entries(shape).map(([k, v]) => [
      k,
      (v instanceof z.ZodDefault ? (v.unwrap() as z.ZodType) : v).optional(),
    ]),
  );
}

/** The stored source with a patch applied: only the fields sent change (format_options one level deeper). */
export function mergeSource(
  current: Record<string, unknown>,
  patch: Record<string, unknown>,
): Record<string, unknown> {
  const merged: Record<string, unknown> = { ...current };
  for (const [k, v] of Object.entries(patch)) {
    if (v === undefined) continue;
    merged[k] =
      k === 'format_options' && v && typeof v === 'object'
        ? { ...((current.format_options as object | undefined) ?? {}), ...(v as object) }
        : v;
  }
  return merged;
}

export const destinationSchema = z.object({
  schema: z
    .string()
    .refine(
      isAllowedDestinationSchema,
      'must be a lower-case SQL identifier ([a-z_][a-z0-9_]*), not a system schema',
    ),
  table: z.string().refine(isPlainIdentifier, 'must be a lower-case SQL identifier ([a-z_][a-z0-9_]*)'),
});
export type Destination = z.infer<typeof destinationSchema>;

/** "raw.events" → {schema, table}; the API accepts either form. */
export const destinationInputSchema = z.union([
  z
    .string()
    .transform((s, ctx) => {
      const parts = s.split('.');
      if (parts.length !== 2) {
        ctx.addIssue({ code: 'custom', message: 'must be "schema.table"' });
        return z.NEVER;
      }
      return { schema: parts[0]!, table: parts[1]! };
    })
    .pipe(destinationSchema),
  destinationSchema,
]);
