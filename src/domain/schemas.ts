import { z } from 'zod';
import { isAllowedDestinationSchema, isPlainIdentifier } from '../lib/identifiers.js';

/** Env-var names only: credentials are referenced, never stored or echoed. */
const envVarName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, 'must be an environment variable name such as AWS_ACCESS_KEY_ID');

export const s3ConnectionConfigSchema = z.object({
  endpoint: z.url().optional().describe('S3-compatible endpoint; omit for AWS S3'),
  region: z.string().min(1).default('us-east-1'),
  force_path_style: z.boolean().default(false).describe('true for MinIO and most S3-compatible stores'),
  access_key_id_env: envVarName.optional(),
  secret_access_key_env: envVarName.optional(),
  session_token_env: envVarName.optional(),
});
export type S3ConnectionConfig = z.infer<typeof s3ConnectionConfigSchema>;

export const localConnectionConfigSchema = z.object({
  path: z.string().min(1).describe('Absolute folder, or relative to the service working directory'),
});
export type LocalConnectionConfig = z.infer<typeof localConnectionConfigSchema>;

export type ConnectionRecord =
  | { id: string; kind: 's3'; config: S3ConnectionConfig }
  | { id: string; kind: 'local'; config: LocalConnectionConfig };

export const formats = ['jsonl', 'csv'] as const;
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
