import { z } from 'zod';
import { columnNameProblem, isAllowedDestinationSchema, isPlainIdentifier } from '../lib/identifiers.js';

/**
 * jsonl: one JSON value per line; json: a JSON array of records; csv; parquet.
 * A `.gz` suffix on the file name means gzip, whatever the format.
 */
export const formats = ['jsonl', 'json', 'csv', 'parquet'] as const;
export const schemaModes = ['add_columns', 'rescue', 'fail'] as const;
export type SchemaMode = (typeof schemaModes)[number];
export type FileFormat = (typeof formats)[number];

export const csvOptionsSchema = z.object({
  header: z.boolean().default(true),
  delimiter: z.string().length(1).default(','),
  quote: z.string().length(1).default('"'),
  escape: z.string().length(1).optional().describe('defaults to the quote character'),
  null_string: z.string().default('').describe('unquoted value read as NULL'),
});
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

export const sourceSchema = z.object({
  bucket: z.string().min(1).optional().describe('required for s3 connections'),
  prefix: z.string().default(''),
  pattern: z.string().min(1).default('**').describe('glob matched against the key below the prefix'),
  format: z.enum(formats),
  format_options: csvOptionsSchema.partial().default({}),
  since: z.iso.datetime({ offset: true }).optional().describe('ignore files modified before this time'),
  schema_mode: z
    .enum(schemaModes)
    .default('add_columns')
    .describe(
      'add_columns: new fields become columns; rescue: new fields and values that do not fit go to _rescued_data; fail: either fails the file, naming the field',
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
