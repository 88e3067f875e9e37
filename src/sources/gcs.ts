import { AsyncLocalStorage } from 'node:async_hooks';
import { createPrivateKey } from 'node:crypto';
import type { Agent } from 'node:http';
import { createRequire } from 'node:module';
import { PassThrough } from 'node:stream';
import { type File, type GetFilesOptions, Storage } from '@google-cloud/storage';
import { z } from 'zod';
import { AppError } from '../domain/errors.js';
import { type AddressPolicy, guardedAgents, hostOf } from '../net/address-policy.js';
import { SecretRefError, secretRefSchema } from '../secrets/refs.js';
import { defineObjectStoreKind, runChecks, type SourceContext } from './kind.js';
import { checkHostAtApi, describeAllowedHost, isAddressRefusal, listingPageSize } from './remote.js';
import {
  type FileMeta,
  type ObjectStore,
  SourceConfigError,
  SourceFileError,
  SourceFileMissingError,
} from './types.js';

const bucketName = /^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$/;
const googleEndpoint = 'https://storage.googleapis.com';

export const gcsConnectionConfigSchema = z
  .object({
    bucket: z
      .string()
      .regex(bucketName, 'a GCS bucket name: lowercase letters, digits, dots, hyphens and underscores')
      .describe('The bucket read; an ingestion’s source.bucket may name another one'),
    credentials: secretRefSchema
      .optional()
      .describe('A service-account key: the JSON key file’s content, stored as a secret'),
    endpoint: z
      .url({ protocol: /^https?$/ })
      .optional()
      .describe('A custom endpoint, such as an emulator (fake-gcs-server); omit for Google Cloud Storage'),
  })
  .strict()
  .describe(
    'credentials may be left out for a custom endpoint (anonymous requests), or when the operator lets the tenant use the service’s own identity. A file’s change marker is its object’s generation.',
  );
export type GcsConnectionConfig = z.infer<typeof gcsConnectionConfigSchema>;

/** What of a service-account key is passed on: the identity and its key, nothing that names a URL. */
interface ServiceAccountKey {
  client_email: string;
  private_key: string;
  project_id?: string;
}

/**
 * A tenant's key file is validated before any Google library sees it: other credential types
 * (external_account, impersonation, authorized_user) name URLs to fetch and files to read on the
 * workers, so only a service account's email and private key are accepted.
 */
function parseServiceAccountKey(text: string): ServiceAccountKey {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    if (err instanceof SyntaxError)
      throw new SourceConfigError('config.credentials: not JSON (a service-account key file is JSON)');
    throw err;
  }
  const parsed = z
    .object({
      type: z.string().optional(),
      client_email: z.string().min(1).optional(),
      private_key: z.string().min(1).optional(),
      project_id: z.string().optional(),
    })
    .safeParse(json);
  if (!parsed.success) throw new SourceConfigError('config.credentials: not a service-account key file');
  const { type, client_email, private_key, project_id } = parsed.data;
  if (type !== 'service_account')
    throw new SourceConfigError(
      `config.credentials: ${type ? `"${type}" credentials are` : 'a key without a type is'} not accepted; name a service-account key ({"type": "service_account", …})`,
    );
  if (!client_email || !private_key)
    throw new SourceConfigError('config.credentials: the key file has no client_email or private_key');
  try {
    createPrivateKey(private_key);
  } catch (err) {
    if (err instanceof Error)
      throw new SourceConfigError(
        `config.credentials: private_key is not a valid PEM private key (${err.message})`,
      );
    throw err;
  }
  return { client_email, private_key, project_id };
}

/**
 * The storage SDK sends its requests through teeny-request, which ignores a per-request `agent` and
 * takes one from its module-level pool. Each pool entry is replaced once by a function (node-fetch
 * calls it per request) answering the agents of the address policy the request runs under: every
 * call into the SDK runs inside `withPolicy`. A request outside it gets no socket — the hook fails
 * closed, and an SDK that stopped using the pool fails loudly here rather than going around it.
 */
const policyOfRequest = new AsyncLocalStorage<AddressPolicy>();
const agentsByPolicy = new WeakMap<AddressPolicy, ReturnType<typeof guardedAgents>>();
let transportHooked = false;

/** One pair of agents per policy, so connections are kept alive across the stores built under it. */
function agentFor(policy: AddressPolicy, url: URL): Agent {
  let pair = agentsByPolicy.get(policy);
  if (!pair) {
    pair = guardedAgents(policy);
    agentsByPolicy.set(policy, pair);
  }
  return url.protocol === 'http:' ? pair.http : pair.https;
}

function hookTransport(): void {
  if (transportHooked) return;
  // The copy of teeny-request the SDK itself loads, wherever the package manager put it.
  const requireFromSdk = createRequire(createRequire(import.meta.url).resolve('@google-cloud/storage'));
  const agents = requireFromSdk('teeny-request/build/src/agents.js') as { pool?: unknown };
  if (!(agents.pool instanceof Map))
    throw new Error(
      '@google-cloud/storage: teeny-request’s agent pool not found; the GCS transport hook needs updating',
    );
  const pick = (url: URL): Agent => {
    const policy = policyOfRequest.getStore();
    if (!policy) throw new Error('a GCS request outside a store’s address policy was refused');
    return agentFor(policy, url);
  };
  for (const key of ['http', 'https', 'http:forever', 'https:forever']) agents.pool.set(key, pick);
  transportHooked = true;
}

const withPolicy = <T>(policy: AddressPolicy, fn: () => T): T => policyOfRequest.run(policy, fn);

async function credentialsFor(config: GcsConnectionConfig, ctx: SourceContext) {
  if (config.credentials)
    return parseServiceAccountKey(await ctx.secrets.resolve(config.credentials, 'config.credentials'));
  // An emulator takes anonymous requests; Google itself needs an identity, the tenant's or (if the
  // operator allows it) the service's own.
  if (!config.endpoint && !ctx.policy.allow_default_credentials)
    throw new SecretRefError(
      'SECRET_NOT_ALLOWED',
      'config.credentials',
      'this GCS connection names no credentials, and the operator does not let this tenant use the service’s own identity; name credentials',
    );
  return undefined;
}

function createGcsClient(
  config: GcsConnectionConfig,
  key: ServiceAccountKey | undefined,
  address: AddressPolicy,
): Storage {
  hookTransport();
  return new Storage({
    apiEndpoint: config.endpoint,
    // Listing and reading objects needs no project; naming one spares a lookup.
    projectId: key?.project_id ?? 'autoloader',
    credentials: key ? { client_email: key.client_email, private_key: key.private_key } : undefined,
    // With a custom endpoint the SDK sends no credentials unless asked: asked when the tenant named some.
    useAuthWithCustomEndpoint: config.endpoint ? key !== undefined : undefined,
    // Temporal owns retries with backoff; the SDK's own (seconds apart) would only hide an outage longer.
    retryOptions: { autoRetry: false },
    // Token requests go through gaxios, which takes an agent per request.
    clientOptions: { transporterOptions: { agent: (url: URL) => agentFor(address, url) } },
  });
}

function translate(err: unknown, what: string, scope: 'bucket' | 'object'): unknown {
  if (isAddressRefusal(err)) return new SourceConfigError(`${what}: ${err.message}`);
  if (err instanceof SourceConfigError || err instanceof SourceFileError) return err;
  const status = (err as { code?: unknown }).code;
  const message = err instanceof Error ? err.message : String(err);
  if (status === 404)
    return scope === 'object'
      ? new SourceFileMissingError(`${what}: object not found`)
      : new SourceConfigError(`${what}: the bucket does not exist`);
  if (status === 403 && scope === 'object') return new SourceFileError(`${what}: access denied (${message})`);
  if (status === 401 || status === 403)
    return new SourceConfigError(`${what}: the credentials were refused (${status}: ${message})`);
  if (status === 400) return new SourceConfigError(`${what}: ${message}`);
  // A key Google does not accept (revoked, or of another project) fails the token request.
  if (/invalid_grant|invalid_client|unauthorized_client/.test(message))
    return new SourceConfigError(`${what}: the service-account key was refused (${message})`);
  return err;
}

function storeOf(config: GcsConnectionConfig, storage: Storage, address: AddressPolicy): ObjectStore {
  const bucketOf = (bucket: string | undefined) => bucket ?? config.bucket;
  return {
    uri: (bucket, key) => `gs://${bucketOf(bucket)}/${key}`,

    async *list({ bucket, prefix, startAfter }): AsyncIterable<FileMeta[]> {
      const name = bucketOf(bucket);
      const b = storage.bucket(name);
      let query: GetFilesOptions | undefined = {
        prefix: prefix || undefined,
        // startOffset is inclusive: the key itself is dropped below.
        startOffset: startAfter,
        maxResults: listingPageSize,
        autoPaginate: false,
      };
      while (query) {
        const q: GetFilesOptions = query;
        let files: File[];
        let next: GetFilesOptions | undefined;
        try {
          const res = await withPolicy(address, () => b.getFiles(q));
          files = res[0];
          next = res[1] as GetFilesOptions | undefined;
        } catch (err) {
          throw translate(err, `listing gs://${name}/${prefix}`, 'bucket');
        }
        const page = files
          .filter((f) => !f.name.endsWith('/') && (!startAfter || f.name > startAfter))
          .map((f) => ({
            key: f.name,
            size: Number(f.metadata.size ?? 0),
            modifiedAt: f.metadata.updated ? new Date(f.metadata.updated) : null,
            // The generation changes when, and only when, the object's content is rewritten.
            etag: f.metadata.generation === undefined ? null : String(f.metadata.generation),
          }));
        if (page.length > 0) yield page;
        query = next?.pageToken ? next : undefined;
      }
    },

    async open(bucket, key) {
      const name = bucketOf(bucket);
      const what = `reading gs://${name}/${key}`;
      const b = storage.bucket(name);
      let generation: string;
      let size: number;
      try {
        const [metadata] = await withPolicy(address, () => b.file(key).getMetadata());
        generation = String(metadata.generation);
        size = Number(metadata.size ?? 0);
      } catch (err) {
        throw translate(err, what, 'object');
      }
      // Read the very generation whose marker is recorded: a rewrite in between reads as missing,
      // and the next run loads the new one.
      const body = new PassThrough({ highWaterMark: 1024 * 1024 });
      withPolicy(address, () => {
        // The request starts when the stream is first read, so it is piped here, under the policy.
        const source = b.file(key, { generation }).createReadStream({
          // A gzip object keeps its bytes (the loader decompresses `.gz` keys itself); each file's
          // generation is recorded, and a truncated body fails the file's load.
          decompress: !key.endsWith('.gz'),
          validation: false,
        });
        source.on('error', (err) => body.destroy(translate(err, what, 'object') as Error));
        body.on('close', () => source.destroy());
        source.pipe(body);
      });
      return { body, etag: generation, size };
    },
  };
}

export const gcsKind = defineObjectStoreKind({
  kind: 'gcs',
  summary: 'Google Cloud Storage (bucket; service-account key by reference; custom endpoint for emulators)',
  configSchema: gcsConnectionConfigSchema,
  needsBucket: false,
  uri: (config, bucket, key) => `gs://${bucket ?? config.bucket}/${key}`,
  async checkConfig(config, ctx, opts) {
    if (config.credentials) await ctx.secrets.check(config.credentials, 'config.credentials');
    else if (!config.endpoint && !ctx.policy.allow_default_credentials)
      throw new AppError(
        'SECRET_NOT_ALLOWED',
        'this GCS connection names no credentials, and the operator does not let this tenant use the service’s own identity',
        {
          field: 'config.credentials',
          help: 'Name credentials: {"secret": "<name>"} holding a service-account key (POST /api/v1/secrets)',
        },
      );
    if (config.endpoint && opts.network)
      await checkHostAtApi(hostOf(config.endpoint), ctx.address, 'config.endpoint');
  },
  createStore: async (config, ctx) =>
    storeOf(config, createGcsClient(config, await credentialsFor(config, ctx), ctx.address), ctx.address),
  test: (config, ctx, target) => {
    let storage: Storage | undefined;
    const bucket = target.bucket ?? config.bucket;
    return runChecks([
      {
        name: 'endpoint',
        run: () => describeAllowedHost(hostOf(config.endpoint ?? googleEndpoint), ctx.address),
      },
      {
        name: 'credentials',
        run: async () => {
          const key = await credentialsFor(config, ctx);
          storage = createGcsClient(config, key, ctx.address);
          if (key) return `service account ${key.client_email} (its private key parses)`;
          return config.endpoint
            ? 'none (anonymous requests to a custom endpoint)'
            : 'the service’s own identity (allowed)';
        },
      },
      {
        name: 'bucket',
        run: async () => {
          const [files] = await withPolicy(ctx.address, () =>
            storage!
              .bucket(bucket)
              .getFiles({ prefix: target.prefix || undefined, maxResults: 1, autoPaginate: false }),
          ).catch((err: unknown) => {
            const e = translate(err, `bucket gs://${bucket}`, 'bucket');
            throw e instanceof Error ? new Error(e.message) : e;
          });
          return `gs://${bucket}/${target.prefix ?? ''} is readable (${files.length} object${files.length === 1 ? '' : 's'} on the first page)`;
        },
      },
    ]);
  },
});
