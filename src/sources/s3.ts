import type { Readable } from 'node:stream';
import {
  GetObjectCommand,
  ListObjectsV2Command,
  type ListObjectsV2CommandOutput,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { z } from 'zod';
import { defineObjectStoreKind } from './kind.js';
import {
  type FileMeta,
  type ListOptions,
  type ObjectStore,
  type OpenedFile,
  SourceConfigError,
  SourceFileMissingError,
} from './types.js';

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

const permanentS3Errors = new Set([
  'NoSuchBucket',
  'AccessDenied',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'InvalidBucketName',
  'AuthorizationHeaderMalformed',
  'PermanentRedirect',
]);

function credentialsFrom(config: S3ConnectionConfig, env: NodeJS.ProcessEnv) {
  if (!config.access_key_id_env && !config.secret_access_key_env) return undefined; // default AWS chain
  const read = (name: string | undefined) => {
    if (!name)
      throw new SourceConfigError(
        'S3 connection names only one of access_key_id_env / secret_access_key_env',
      );
    const value = env[name];
    if (!value)
      throw new SourceConfigError(
        `environment variable ${name} (named by the connection) is not set on the worker`,
      );
    return value;
  };
  return {
    accessKeyId: read(config.access_key_id_env),
    secretAccessKey: read(config.secret_access_key_env),
    sessionToken: config.session_token_env ? env[config.session_token_env] : undefined,
  };
}

function translate(err: unknown, what: string): unknown {
  if (err instanceof S3ServiceException) {
    if (err.name === 'NoSuchKey' || err.name === 'NotFound')
      return new SourceFileMissingError(`${what}: object not found`);
    if (permanentS3Errors.has(err.name)) return new SourceConfigError(`${what}: ${err.name}: ${err.message}`);
  }
  return err;
}

export function createS3Store(config: S3ConnectionConfig, env: NodeJS.ProcessEnv = process.env): ObjectStore {
  const client = new S3Client({
    endpoint: config.endpoint,
    region: config.region,
    forcePathStyle: config.force_path_style,
    credentials: credentialsFrom(config, env),
    // Temporal owns retries with backoff; the SDK's own retries would only hide an outage longer.
    maxAttempts: 2,
    // No CRC of every object read and no checksum on the few small writes: on small files the
    // checksum middleware was a fifth of the SDK's CPU. Each file's ETag is recorded, and a
    // truncated body fails the file's load.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const requireBucket = (bucket: string | undefined) => {
    if (!bucket) throw new SourceConfigError('an s3 source needs a bucket');
    return bucket;
  };

  return {
    uri: (bucket, key) => `s3://${bucket}/${key}`,

    async *list({ bucket, prefix, startAfter }: ListOptions): AsyncIterable<FileMeta[]> {
      const b = requireBucket(bucket);
      let token: string | undefined;
      do {
        let out: ListObjectsV2CommandOutput;
        try {
          out = await client.send(
            new ListObjectsV2Command({
              Bucket: b,
              Prefix: prefix || undefined,
              StartAfter: token ? undefined : startAfter,
              ContinuationToken: token,
              MaxKeys: 1000,
            }),
          );
        } catch (err) {
          throw translate(err, `listing s3://${b}/${prefix}`);
        }
        const files: FileMeta[] = (out.Contents ?? [])
          .filter((o) => o.Key !== undefined && !o.Key.endsWith('/'))
          .map((o) => ({
            key: o.Key!,
            size: o.Size ?? 0,
            modifiedAt: o.LastModified ?? null,
            etag: o.ETag ?? null,
          }));
        yield files;
        token = out.IsTruncated ? out.NextContinuationToken : undefined;
      } while (token);
    },

    async open(bucket, key): Promise<OpenedFile> {
      const b = requireBucket(bucket);
      try {
        const res = await client.send(new GetObjectCommand({ Bucket: b, Key: key }));
        return { body: res.Body as Readable, etag: res.ETag ?? null, size: res.ContentLength ?? 0 };
      } catch (err) {
        throw translate(err, `reading s3://${b}/${key}`);
      }
    },
  };
}

export const s3Kind = defineObjectStoreKind({
  kind: 's3',
  summary:
    'AWS S3 or any S3-compatible store (endpoint, region, force_path_style, credentials as env-var names)',
  configSchema: s3ConnectionConfigSchema,
  needsBucket: true,
  createStore: (config, ctx) => createS3Store(config, ctx.env),
});
