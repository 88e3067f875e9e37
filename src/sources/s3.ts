import type { Readable } from 'node:stream';
import {
  GetObjectCommand,
  ListObjectsV2Command,
  type ListObjectsV2CommandOutput,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { z } from 'zod';
import { AppError } from '../domain/errors.js';
import {
  AddressNotAllowedError,
  type AddressPolicy,
  guardedAgents,
  hostOf,
  resolveAllowed,
} from '../net/address-policy.js';
import { envVarNameSchema, type SecretRef, SecretRefError, secretRefSchema } from '../secrets/refs.js';
import { defineObjectStoreKind, runChecks, type SourceContext } from './kind.js';
import { type SignedGetter, signedGetter } from './s3-get.js';
import {
  type FileMeta,
  type ListOptions,
  type ObjectStore,
  type OpenedFile,
  SourceConfigError,
  SourceFileError,
  SourceFileMissingError,
} from './types.js';

export const s3ConnectionConfigSchema = z
  .object({
    endpoint: z.url().optional().describe('S3-compatible endpoint; omit for AWS S3'),
    region: z.string().min(1).max(64).default('us-east-1'),
    force_path_style: z.boolean().default(false).describe('true for MinIO and most S3-compatible stores'),
    access_key_id: secretRefSchema.optional(),
    secret_access_key: secretRefSchema.optional(),
    session_token: secretRefSchema.optional(),
    access_key_id_env: envVarNameSchema.optional().describe('older form of access_key_id: {"env": …}'),
    secret_access_key_env: envVarNameSchema
      .optional()
      .describe('older form of secret_access_key: {"env": …}'),
    session_token_env: envVarNameSchema.optional().describe('older form of session_token: {"env": …}'),
  })
  .strict();
export type S3ConnectionConfig = z.infer<typeof s3ConnectionConfigSchema>;

/** The credential references of a config, whichever form it uses. */
function credentialRefs(config: S3ConnectionConfig) {
  const ref = (r: SecretRef | undefined, env: string | undefined): SecretRef | undefined =>
    r ?? (env ? { env } : undefined);
  return {
    accessKeyId: ref(config.access_key_id, config.access_key_id_env),
    secretAccessKey: ref(config.secret_access_key, config.secret_access_key_env),
    sessionToken: ref(config.session_token, config.session_token_env),
  };
}

const permanentS3Errors = new Set([
  'NoSuchBucket',
  'AccessDenied',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'InvalidBucketName',
  'AuthorizationHeaderMalformed',
  'PermanentRedirect',
]);

/** The credentials the S3 client signs with, or undefined for the service's own identity (if allowed). */
async function credentialsFor(config: S3ConnectionConfig, ctx: SourceContext) {
  const refs = credentialRefs(config);
  if (!refs.accessKeyId && !refs.secretAccessKey) {
    if (!ctx.policy.allow_default_credentials) {
      throw new SecretRefError(
        'SECRET_NOT_ALLOWED',
        'config.access_key_id',
        'this S3 connection names no credentials, and the operator does not let this tenant use the service’s own identity; name access_key_id and secret_access_key',
      );
    }
    return undefined;
  }
  if (!refs.accessKeyId || !refs.secretAccessKey) {
    throw new SecretRefError(
      'VALIDATION_ERROR',
      refs.accessKeyId ? 'config.secret_access_key' : 'config.access_key_id',
      'an S3 connection names both access_key_id and secret_access_key, or neither',
    );
  }
  return {
    accessKeyId: await ctx.secrets.resolve(refs.accessKeyId, 'config.access_key_id'),
    secretAccessKey: await ctx.secrets.resolve(refs.secretAccessKey, 'config.secret_access_key'),
    sessionToken: refs.sessionToken
      ? await ctx.secrets.resolve(refs.sessionToken, 'config.session_token')
      : undefined,
  };
}

/** Errors of reading one object that are that object's own: it fails, the run goes on. */
const permanentObjectErrors = new Set([
  'AccessDenied',
  'InvalidObjectState',
  'KMS.DisabledException',
  'KMS.AccessDeniedException',
]);

/** Our error for an S3 error code (the SDK's error name), or undefined when it is not one we map. */
function errorForCode(
  code: string,
  message: string,
  what: string,
  scope: 'listing' | 'object',
): Error | undefined {
  if (code === 'NoSuchKey' || code === 'NotFound')
    return new SourceFileMissingError(`${what}: object not found`);
  if (scope === 'object' && (permanentObjectErrors.has(code) || code.startsWith('KMS')))
    return new SourceFileError(`${what}: ${code}: ${message}`);
  if (permanentS3Errors.has(code)) return new SourceConfigError(`${what}: ${code}: ${message}`);
  return undefined;
}

function translate(err: unknown, what: string, scope: 'listing' | 'object'): unknown {
  if (err instanceof S3ServiceException) return errorForCode(err.name, err.message, what, scope) ?? err;
  return err;
}

export function createS3Client(
  config: S3ConnectionConfig,
  credentials: Awaited<ReturnType<typeof credentialsFor>>,
  address: AddressPolicy,
  agents = guardedAgents(address),
): S3Client {
  return new S3Client({
    endpoint: config.endpoint,
    region: config.region,
    forcePathStyle: config.force_path_style,
    credentials,
    // Every connection the SDK opens resolves its host through the address policy.
    requestHandler: new NodeHttpHandler({ httpAgent: agents.http, httpsAgent: agents.https }),
    // Temporal owns retries with backoff; the SDK's own retries would only hide an outage longer.
    maxAttempts: 2,
    // No CRC of every object read and no checksum on the few small writes: on small files the
    // checksum middleware was a fifth of the SDK's CPU. Each file's ETag is recorded, and a
    // truncated body fails the file's load.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

function storeOf(client: S3Client, signedGet?: SignedGetter): ObjectStore {
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
          throw translate(err, `listing s3://${b}/${prefix}`, 'listing');
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
      // One signed request where the answer is a plain 200; anything else asks again through the
      // SDK, which says what went wrong.
      const fast = await signedGet?.(b, key);
      if (fast?.ok) return { body: fast.body, etag: fast.etag, size: fast.size };
      const refused = fast && errorForCode(fast.code, fast.message, `reading s3://${b}/${key}`, 'object');
      if (refused) throw refused;
      try {
        const res = await client.send(new GetObjectCommand({ Bucket: b, Key: key }));
        return { body: res.Body as Readable, etag: res.ETag ?? null, size: res.ContentLength ?? 0 };
      } catch (err) {
        throw translate(err, `reading s3://${b}/${key}`, 'object');
      }
    },
  };
}

export async function createS3Store(config: S3ConnectionConfig, ctx: SourceContext): Promise<ObjectStore> {
  const agents = guardedAgents(ctx.address);
  const client = createS3Client(config, await credentialsFor(config, ctx), ctx.address, agents);
  const signedGet = signedGetter(client, {
    endpoint: config.endpoint,
    region: config.region,
    forcePathStyle: config.force_path_style,
    agents,
  });
  return storeOf(client, signedGet);
}

/** The endpoint host must be one the policy allows (checked again on every connection). */
async function checkEndpoint(config: S3ConnectionConfig, address: AddressPolicy): Promise<string> {
  if (!config.endpoint) return 'AWS S3 (no custom endpoint)';
  const host = hostOf(config.endpoint);
  const resolved = await resolveAllowed(host, address);
  return `${host} resolves to ${resolved.map((a) => a.address).join(', ')}`;
}

export const s3Kind = defineObjectStoreKind({
  kind: 's3',
  summary: 'AWS S3 or any S3-compatible store (endpoint, region, force_path_style, credentials by reference)',
  configSchema: s3ConnectionConfigSchema,
  needsBucket: true,
  uri: (_config, bucket, key) => `s3://${bucket}/${key}`,
  async checkConfig(config, ctx, opts) {
    const refs = credentialRefs(config);
    for (const [field, ref] of Object.entries({
      'config.access_key_id': refs.accessKeyId,
      'config.secret_access_key': refs.secretAccessKey,
      'config.session_token': refs.sessionToken,
    })) {
      if (ref) await ctx.secrets.check(ref, field);
    }
    if (!refs.accessKeyId && !refs.secretAccessKey && !ctx.policy.allow_default_credentials) {
      throw new AppError(
        'SECRET_NOT_ALLOWED',
        'this S3 connection names no credentials, and the operator does not let this tenant use the service’s own identity',
        {
          field: 'config.access_key_id',
          help: 'Name access_key_id and secret_access_key: {"secret": "<name>"} (POST /api/v1/secrets)',
        },
      );
    }
    if (config.endpoint && opts.network) {
      try {
        await resolveAllowed(hostOf(config.endpoint), ctx.address);
      } catch (err) {
        if (err instanceof AddressNotAllowedError)
          throw new AppError('ENDPOINT_NOT_ALLOWED', err.message, { field: 'config.endpoint' });
        // A name that does not resolve now (ENOTFOUND, no resolver) may later: every connection is
        // checked again when it is made, so creation does not depend on DNS.
        if (!(err instanceof Error && 'code' in err)) throw err;
      }
    }
  },
  createStore: createS3Store,
  test: (config, ctx, target) => {
    let client: S3Client | undefined;
    return runChecks([
      { name: 'endpoint', run: () => checkEndpoint(config, ctx.address) },
      {
        name: 'credentials',
        run: async () => {
          const credentials = await credentialsFor(config, ctx);
          client = createS3Client(config, credentials, ctx.address);
          return credentials
            ? 'resolved from the connection’s references'
            : 'the service’s own identity (allowed)';
        },
      },
      ...(target.bucket
        ? [
            {
              name: 'list',
              run: async () => {
                const out = await client!
                  .send(
                    new ListObjectsV2Command({
                      Bucket: target.bucket,
                      Prefix: target.prefix || undefined,
                      MaxKeys: 1,
                    }),
                  )
                  .catch((err: unknown) => {
                    throw err instanceof S3ServiceException ? new Error(`${err.name}: ${err.message}`) : err;
                  });
                return `s3://${target.bucket}/${target.prefix ?? ''} is readable (${out.KeyCount ?? 0} object${out.KeyCount === 1 ? '' : 's'} on the first page)`;
              },
            },
          ]
        : []),
    ]);
  },
});
