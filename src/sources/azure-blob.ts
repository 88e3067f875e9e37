import net from 'node:net';
import type { Readable } from 'node:stream';
import {
  AnonymousCredential,
  BlobServiceClient,
  type ContainerClient,
  newPipeline,
  type RequestPolicyFactory,
  RestError,
  StorageSharedKeyCredential,
} from '@azure/storage-blob';
import { z } from 'zod';
import { AppError } from '../domain/errors.js';
import { type AddressPolicy, guardedAgents, hostOf } from '../net/address-policy.js';
import { secretRefSchema } from '../secrets/refs.js';
import { defineObjectStoreKind, runChecks, type SourceContext } from './kind.js';
import { checkHostAtApi, describeAllowedHost, isAddressRefusal } from './remote.js';
import {
  type FileMeta,
  type ObjectStore,
  SourceConfigError,
  SourceFileError,
  SourceFileMissingError,
} from './types.js';

/** Azure's container naming rule: 3–63 lowercase letters, digits and single hyphens. */
const containerName = /^(?=.{3,63}$)[a-z0-9]+(-[a-z0-9]+)*$/;

/** The URL, or undefined when it is not one (the field's own check reports that). */
function parseUrl(text: string): URL | undefined {
  try {
    return new URL(text);
  } catch (err) {
    if (err instanceof TypeError) return undefined;
    throw err;
  }
}

export const azureBlobConnectionConfigSchema = z
  .object({
    account_url: z
      .url({ protocol: /^https?$/ })
      .describe(
        'The account’s blob endpoint: https://<account>.blob.core.windows.net, or an emulator’s http://127.0.0.1:10000/devstoreaccount1',
      ),
    container: z
      .string()
      .regex(containerName, 'an Azure container name: 3–63 lowercase letters, digits and hyphens')
      .describe('The container read; an ingestion’s source.bucket may name another one of the account'),
    account_name: z
      .string()
      .regex(/^[a-z0-9]{3,64}$/)
      .optional()
      .describe(
        'For account_key: the account’s name (default: the first label of the host, or the first path segment of an emulator’s URL)',
      ),
    account_key: secretRefSchema.optional().describe('The storage account key'),
    sas_token: secretRefSchema
      .optional()
      .describe('A shared access signature (with or without its leading ?)'),
    connection_string: secretRefSchema
      .optional()
      .describe(
        'A storage connection string; its account key or SAS is used, and its blob endpoint must be account_url',
      ),
  })
  .strict()
  .superRefine((c, ctx) => {
    const url = parseUrl(c.account_url);
    if (url && (url.search || url.hash || url.username || url.password)) {
      ctx.addIssue({
        code: 'custom',
        path: ['account_url'],
        message:
          'the account URL carries no query, fragment or user: a SAS token is named with sas_token, by reference',
      });
    }
    const named = [c.account_key, c.sas_token, c.connection_string].filter(Boolean).length;
    if (named !== 1) {
      ctx.addIssue({
        code: 'custom',
        path: ['account_key'],
        message: 'name exactly one of account_key, sas_token or connection_string',
      });
    }
  })
  .describe(
    'Exactly one of account_key, sas_token or connection_string. A file’s change marker is its blob’s ETag.',
  );
export type AzureBlobConnectionConfig = z.infer<typeof azureBlobConnectionConfigSchema>;

/** How requests are authorised: the account key (Shared Key signing) or a SAS appended to every URL. */
type AzureAuth =
  | { kind: 'key'; accountName: string; accountKey: string; from: string }
  | { kind: 'sas'; sas: string; from: string };

const trimSlashes = (u: string) => u.replace(/\/+$/, '');

/** An emulator (or custom domain) puts the account in the path; Azure itself in the host's first label. */
function accountNameOf(accountUrl: string): string | undefined {
  const url = new URL(accountUrl);
  const first = url.pathname.split('/').find(Boolean);
  if (first) return first;
  return net.isIP(url.hostname) === 0 ? url.hostname.split('.')[0] : undefined;
}

/** `Key=Value;…` as Azure writes connection strings (keys compared case-insensitively). */
function parseConnectionString(text: string): Map<string, string> {
  const parts = new Map<string, string>();
  for (const part of text.trim().split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) parts.set(part.slice(0, eq).trim().toLowerCase(), part.slice(eq + 1).trim());
  }
  return parts;
}

async function authFor(config: AzureBlobConnectionConfig, ctx: SourceContext): Promise<AzureAuth> {
  if (config.account_key) {
    const accountName = config.account_name ?? accountNameOf(config.account_url);
    if (!accountName)
      throw new SourceConfigError(
        'config.account_name: the account URL does not name the account; name account_name',
      );
    const accountKey = await ctx.secrets.resolve(config.account_key, 'config.account_key');
    return { kind: 'key', accountName, accountKey, from: 'account_key' };
  }
  if (config.sas_token) {
    const sas = (await ctx.secrets.resolve(config.sas_token, 'config.sas_token')).trim().replace(/^\?/, '');
    return { kind: 'sas', sas, from: 'sas_token' };
  }
  const text = await ctx.secrets.resolve(config.connection_string!, 'config.connection_string');
  const parts = parseConnectionString(text);
  if (parts.get('usedevelopmentstorage') === 'true')
    throw new SourceConfigError(
      'config.connection_string: UseDevelopmentStorage is not supported; name the emulator’s account_url and account_key',
    );
  // The connection string may not send requests elsewhere than the account URL the API checked.
  const accountName = parts.get('accountname');
  const endpoint =
    parts.get('blobendpoint') ??
    (accountName
      ? `${parts.get('defaultendpointsprotocol') ?? 'https'}://${accountName}.blob.${parts.get('endpointsuffix') ?? 'core.windows.net'}`
      : undefined);
  if (endpoint && trimSlashes(endpoint) !== trimSlashes(config.account_url))
    throw new SourceConfigError(
      `config.connection_string: its blob endpoint ${trimSlashes(endpoint)} is not the connection’s account_url`,
    );
  const sas = parts.get('sharedaccesssignature');
  if (sas) return { kind: 'sas', sas: sas.replace(/^\?/, ''), from: 'connection_string (SAS)' };
  const accountKey = parts.get('accountkey');
  if (accountName && accountKey)
    return { kind: 'key', accountName, accountKey, from: 'connection_string (account key)' };
  throw new SourceConfigError(
    'config.connection_string: names neither AccountName and AccountKey nor SharedAccessSignature',
  );
}

/** Every request the SDK sends goes through the address policy's agents (Node's per-request `agent`). */
function agentPolicy(address: AddressPolicy): RequestPolicyFactory {
  const agents = guardedAgents(address);
  return {
    create: (next) => ({
      sendRequest: (request) => {
        request.agent = request.url.startsWith('https:') ? agents.https : agents.http;
        return next.sendRequest(request);
      },
    }),
  };
}

function createAzureServiceClient(
  config: AzureBlobConnectionConfig,
  auth: AzureAuth,
  address: AddressPolicy,
): BlobServiceClient {
  const pipeline = newPipeline(
    auth.kind === 'key'
      ? new StorageSharedKeyCredential(auth.accountName, auth.accountKey)
      : new AnonymousCredential(),
    // Temporal owns retries with backoff; the SDK's own would only hide an outage longer.
    { retryOptions: { maxTries: 2 } },
  );
  pipeline.factories.push(agentPolicy(address));
  const base = trimSlashes(config.account_url);
  return new BlobServiceClient(auth.kind === 'sas' ? `${base}?${auth.sas}` : base, pipeline);
}

/** The first line of an Azure error (its message goes on with request ids and times). */
const firstLine = (err: Error) => err.message.split('\n')[0]!.trim();

function translate(err: unknown, what: string, scope: 'container' | 'blob'): unknown {
  if (isAddressRefusal(err)) return new SourceConfigError(`${what}: ${err.message}`);
  if (err instanceof RestError && err.statusCode !== undefined) {
    const code = err.code ?? String(err.statusCode);
    if (err.statusCode === 404 && scope === 'blob')
      return new SourceFileMissingError(`${what}: blob not found`);
    // An archived blob cannot be read until it is rehydrated: that blob's failure, not the run's.
    if (err.statusCode === 409 && scope === 'blob')
      return new SourceFileError(`${what}: ${code}: ${firstLine(err)}`);
    if (err.statusCode === 404)
      return new SourceConfigError(`${what}: ${code}: the container does not exist`);
    if (err.statusCode === 401 || err.statusCode === 403)
      return new SourceConfigError(
        `${what}: the account refused the credentials (${err.statusCode} ${code}: ${firstLine(err)})`,
      );
    if (err.statusCode === 400) return new SourceConfigError(`${what}: ${code}: ${firstLine(err)}`);
  }
  return err;
}

/** Listings carry the ETag bare, downloads quoted: one form, so an unchanged blob keeps its marker. */
const unquote = (etag: string | undefined) => (etag ? etag.replace(/^"|"$/g, '') : null);

function storeOf(config: AzureBlobConnectionConfig, client: BlobServiceClient): ObjectStore {
  const base = trimSlashes(config.account_url);
  const containerOf = (bucket: string | undefined): [string, ContainerClient] => {
    const name = bucket ?? config.container;
    return [name, client.getContainerClient(name)];
  };
  return {
    uri: (bucket, key) => `${base}/${bucket ?? config.container}/${key}`,

    async *list({ bucket, prefix, startAfter }): AsyncIterable<FileMeta[]> {
      const [name, container] = containerOf(bucket);
      // Blob listings cannot start after a key: a resumed listing pages from the prefix's start and
      // drops what it already saw (one page in memory at a time either way).
      const pages = container.listBlobsFlat({ prefix: prefix || undefined }).byPage({ maxPageSize: 1000 });
      while (true) {
        let next: Awaited<ReturnType<typeof pages.next>>;
        try {
          next = await pages.next();
        } catch (err) {
          throw translate(err, `listing ${base}/${name}/${prefix}`, 'container');
        }
        if (next.done) return;
        const files = next.value.segment.blobItems
          .filter((b) => !b.name.endsWith('/') && (!startAfter || b.name > startAfter))
          .map((b) => ({
            key: b.name,
            size: b.properties.contentLength ?? 0,
            modifiedAt: b.properties.lastModified ?? null,
            etag: unquote(b.properties.etag),
          }));
        if (files.length > 0) yield files;
      }
    },

    async open(bucket, key) {
      const [name, container] = containerOf(bucket);
      try {
        const res = await container.getBlobClient(key).download(0, undefined, { maxRetryRequests: 2 });
        return {
          body: res.readableStreamBody as Readable,
          etag: unquote(res.etag),
          size: res.contentLength ?? 0,
        };
      } catch (err) {
        throw translate(err, `reading ${base}/${name}/${key}`, 'blob');
      }
    },
  };
}

export const azureBlobKind = defineObjectStoreKind({
  kind: 'azure_blob',
  summary:
    'Azure Blob Storage (account URL, container; account key, SAS token or connection string by reference)',
  configSchema: azureBlobConnectionConfigSchema,
  needsBucket: false,
  uri: (config, bucket, key) => `${trimSlashes(config.account_url)}/${bucket ?? config.container}/${key}`,
  async checkConfig(config, ctx, opts) {
    for (const [field, ref] of Object.entries({
      'config.account_key': config.account_key,
      'config.sas_token': config.sas_token,
      'config.connection_string': config.connection_string,
    })) {
      if (ref) await ctx.secrets.check(ref, field);
    }
    if (config.account_key && !config.account_name && !accountNameOf(config.account_url))
      throw new AppError(
        'VALIDATION_ERROR',
        'config.account_name: the account URL does not name the account',
        {
          field: 'config.account_name',
        },
      );
    if (opts.network) await checkHostAtApi(hostOf(config.account_url), ctx.address, 'config.account_url');
  },
  createStore: async (config, ctx) =>
    storeOf(config, createAzureServiceClient(config, await authFor(config, ctx), ctx.address)),
  test: (config, ctx, target) => {
    let client: BlobServiceClient | undefined;
    const container = target.bucket ?? config.container;
    return runChecks([
      { name: 'endpoint', run: () => describeAllowedHost(hostOf(config.account_url), ctx.address) },
      {
        name: 'credentials',
        run: async () => {
          const auth = await authFor(config, ctx);
          client = createAzureServiceClient(config, auth, ctx.address);
          return auth.kind === 'key'
            ? `account key of account "${auth.accountName}", from ${auth.from}`
            : `SAS token, from ${auth.from}`;
        },
      },
      {
        name: 'container',
        run: async () => {
          const page = await client!
            .getContainerClient(container)
            .listBlobsFlat({ prefix: target.prefix || undefined })
            .byPage({ maxPageSize: 1 })
            .next()
            .catch((err: unknown) => {
              const e = translate(err, `container "${container}"`, 'container');
              throw e instanceof Error ? new Error(e.message) : e;
            });
          const n = page.done ? 0 : page.value.segment.blobItems.length;
          return `container "${container}" is readable with these credentials (${n} blob${n === 1 ? '' : 's'} on the first page)`;
        },
      },
    ]);
  },
});
