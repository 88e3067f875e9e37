import { randomUUID } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { BlobServiceClient, StorageSharedKeyCredential } from '@azure/storage-blob';
import ssh2 from 'ssh2';
import { inject } from 'vitest';
import type { ConnectionKind } from '../../src/sources/index.js';
import type { Harness } from './harness.js';

/**
 * Each store kind's test fixture: a fresh place to read (a container, a bucket, a folder), files
 * put there the fastest way the test part allows (parallel uploads, or straight onto the disk the
 * server serves), and the kind's connection config with its credentials as the tenant's secrets.
 */
export interface StorePlace {
  /** The ingestion's source fields that point at this place (a bucket for object stores). */
  source: Record<string, unknown>;
  /** A connection reading this place; `variant` picks another way to sign in, where the kind has one. */
  config(variant?: string): Record<string, unknown>;
  put(files: Record<string, string | Buffer>): Promise<void>;
  /** The file_path / _source_file of a key, read through `config(variant)`. */
  uri(key: string, variant?: string): string;
}

export interface WrongCredentials {
  label: string;
  config: Record<string, unknown>;
  /** The check that must fail, and what its detail must say. */
  check: string;
  detail: RegExp;
}

export interface StoreFixture {
  kind: ConnectionKind;
  /** The checks a working connection's test reports, in order. */
  checks: string[];
  /** The field ENDPOINT_NOT_ALLOWED names when the host is refused. */
  hostField: string;
  /** Stores the kind's secrets for the harness's tenant. */
  storeSecrets(h: Harness): Promise<void>;
  newPlace(): Promise<StorePlace>;
  /** The variants of `config` the scenarios use (each is exercised by one of them). */
  variants: string[];
  wrongCredentials(place: StorePlace): WrongCredentials[];
  /** A connection to a container, bucket or folder that does not exist, and what a run says of it. */
  missingPlace(place: StorePlace): { config: Record<string, unknown>; error: RegExp };
}

export async function putSecrets(h: Harness, secrets: Record<string, string>): Promise<void> {
  for (const [name, value] of Object.entries(secrets)) {
    const res = await h.api('PUT', `/api/v1/secrets/${name}`, { value });
    if (res.status !== 200)
      throw new Error(`secret ${name} not stored: ${res.status} ${JSON.stringify(res.body)}`);
  }
}

/** Runs `fn` over `items`, `limit` at a time (the test parts, like this machine, have two cores). */
export async function inParallel<T>(
  items: T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

const uniqueName = () => `t${randomUUID().replaceAll('-', '').slice(0, 16)}`;

/** Files written straight into the folder an SFTP or FTP test server serves. */
async function putOnDisk(dir: string, files: Record<string, string | Buffer>): Promise<void> {
  await inParallel(Object.entries(files), 64, async ([key, body]) => {
    await mkdir(path.dirname(path.join(dir, key)), { recursive: true });
    await writeFile(path.join(dir, key), body);
  });
}

export function azureFixture(): StoreFixture {
  const az = inject('stores').azurite;
  const admin = new BlobServiceClient(
    az.accountUrl,
    new StorageSharedKeyCredential(az.accountName, az.accountKey),
  );
  const connectionString = (endpoint: string) =>
    `DefaultEndpointsProtocol=http;AccountName=${az.accountName};AccountKey=${az.accountKey};BlobEndpoint=${endpoint};`;
  return {
    kind: 'azure_blob',
    checks: ['endpoint', 'credentials', 'container'],
    hostField: 'config.account_url',
    variants: ['account_key', 'connection_string'],
    storeSecrets: (h) =>
      putSecrets(h, {
        'azurite-key': az.accountKey,
        'azurite-wrong-key': Buffer.from('not the account key, but base64 all the same').toString('base64'),
        'azurite-connection-string': connectionString(az.accountUrl),
        'azurite-elsewhere': connectionString('http://127.0.0.1:1/devstoreaccount1'),
      }),
    async newPlace() {
      const container = uniqueName();
      await admin.createContainer(container);
      const client = admin.getContainerClient(container);
      const base = { account_url: az.accountUrl, container };
      return {
        source: {},
        config: (variant = 'account_key') =>
          variant === 'connection_string'
            ? { ...base, connection_string: { secret: 'azurite-connection-string' } }
            : { ...base, account_key: { secret: 'azurite-key' } },
        put: (files) =>
          inParallel(Object.entries(files), 32, async ([key, body]) => {
            const data = Buffer.from(body);
            await client.getBlockBlobClient(key).uploadData(data);
          }),
        uri: (key) => `${az.accountUrl}/${container}/${key}`,
      };
    },
    wrongCredentials: (place) => [
      {
        label: 'a wrong account key',
        config: { ...place.config(), account_key: { secret: 'azurite-wrong-key' } },
        check: 'container',
        detail: /refused the credentials \(403 /,
      },
      {
        label: 'a connection string that sends requests to another endpoint',
        config: {
          account_url: place.config().account_url,
          container: place.config().container,
          connection_string: { secret: 'azurite-elsewhere' },
        },
        check: 'credentials',
        detail: /blob endpoint http:\/\/127\.0\.0\.1:1\/devstoreaccount1 is not the connection’s account_url/,
      },
    ],
    missingPlace: (place) => ({
      config: { ...place.config(), container: uniqueName() },
      error: /ContainerNotFound: the container does not exist/,
    }),
  };
}

export function gcsFixture(): StoreFixture {
  const { endpoint } = inject('stores').gcs;
  return {
    kind: 'gcs',
    checks: ['endpoint', 'credentials', 'bucket'],
    hostField: 'config.endpoint',
    variants: ['anonymous'],
    storeSecrets: (h) =>
      putSecrets(h, {
        'gcs-broken-key': JSON.stringify({
          type: 'service_account',
          client_email: 'loader@project.iam.gserviceaccount.com',
          private_key: '-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n',
        }),
        'gcs-external-account': JSON.stringify({
          type: 'external_account',
          audience: '//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/x',
          credential_source: { url: 'http://169.254.169.254/computeMetadata/v1/token' },
        }),
      }),
    async newPlace() {
      const bucket = uniqueName();
      const created = await fetch(`${endpoint}/storage/v1/b?project=test`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: bucket }),
      });
      if (!created.ok) throw new Error(`bucket not created: ${created.status} ${await created.text()}`);
      return {
        source: {},
        config: () => ({ bucket, endpoint }),
        put: (files) =>
          inParallel(Object.entries(files), 32, async ([key, body]) => {
            const res = await fetch(
              `${endpoint}/upload/storage/v1/b/${bucket}/o?uploadType=media&name=${encodeURIComponent(key)}`,
              { method: 'POST', body: Buffer.from(body) },
            );
            if (!res.ok) throw new Error(`upload of ${key} failed: ${res.status} ${await res.text()}`);
          }),
        uri: (key) => `gs://${bucket}/${key}`,
      };
    },
    wrongCredentials: (place) => [
      {
        label: 'a service-account key whose private key is broken',
        config: { ...place.config(), credentials: { secret: 'gcs-broken-key' } },
        check: 'credentials',
        detail: /private_key is not a valid PEM private key/,
      },
      {
        label: 'external-account credentials (they name URLs the service would fetch)',
        config: { ...place.config(), credentials: { secret: 'gcs-external-account' } },
        check: 'credentials',
        detail: /"external_account" credentials are not accepted/,
      },
    ],
    missingPlace: (place) => ({
      config: { ...place.config(), bucket: uniqueName() },
      error: /gs:\/\/t[0-9a-f]+\/: the bucket does not exist/,
    }),
  };
}

export function sftpFixture(): StoreFixture {
  const s = inject('stores').sftp;
  const stranger = ssh2.utils.generateKeyPairSync('ed25519');
  return {
    kind: 'sftp',
    checks: ['address', 'credentials', 'host key', 'login', 'folder'],
    hostField: 'config.host',
    variants: ['password', 'private_key'],
    storeSecrets: (h) =>
      putSecrets(h, {
        'sftp-password': s.password,
        'sftp-wrong-password': `${s.password}-not`,
        'sftp-key': s.privateKey,
        'sftp-stranger-key': stranger.private,
      }),
    async newPlace() {
      const name = uniqueName();
      // sshd serves the folder by its own absolute path (no chroot: see src/dev/sshd.ts).
      const dir = path.join(s.root, name);
      await mkdir(dir, { recursive: true });
      const base = {
        host: s.host,
        port: s.port,
        username: s.username,
        known_host_key: s.hostPublicKey,
        root: dir,
      };
      return {
        source: {},
        config: (variant = 'password') =>
          variant === 'private_key'
            ? { ...base, private_key: { secret: 'sftp-key' } }
            : { ...base, password: { secret: 'sftp-password' } },
        put: (files) => putOnDisk(dir, files),
        uri: (key) => `sftp://${s.host}:${s.port}${dir}/${key}`,
      };
    },
    wrongCredentials: (place) => [
      {
        label: 'a wrong password',
        config: { ...place.config(), password: { secret: 'sftp-wrong-password' } },
        check: 'login',
        detail: new RegExp(`refused the password of user "${s.username}"`),
      },
      {
        label: 'a private key the server does not know',
        config: { ...place.config('private_key'), private_key: { secret: 'sftp-stranger-key' } },
        check: 'login',
        detail: new RegExp(`refused the private key of user "${s.username}"`),
      },
      {
        label: 'a host key other than the server’s',
        config: { ...place.config(), known_host_key: stranger.public },
        check: 'host key',
        detail: /host key mismatch: .* presented SHA256:/,
      },
    ],
    missingPlace: (place) => ({
      config: { ...place.config(), root: path.join(s.root, uniqueName()) },
      error: /sftp:\/\/127\.0\.0\.1:\d+\/.+\/t[0-9a-f]+: the folder does not exist/,
    }),
  };
}

export function ftpFixture(): StoreFixture {
  const { ftp, ftps } = inject('stores');
  return {
    kind: 'ftp',
    checks: ['address', 'credentials', 'login', 'folder'],
    hostField: 'config.host',
    variants: ['ftp', 'ftps'],
    storeSecrets: (h) =>
      putSecrets(h, { 'ftp-password': ftp.password, 'ftp-wrong-password': 'not-the-password' }),
    async newPlace() {
      const name = uniqueName();
      const dir = path.join(ftp.root, name);
      await mkdir(dir, { recursive: true });
      const base = {
        host: ftp.host,
        username: ftp.username,
        password: { secret: 'ftp-password' },
        root: `/${name}`,
      };
      return {
        source: {},
        config: (variant = 'ftp') =>
          variant === 'ftps'
            ? { ...base, port: ftps.port, tls: 'explicit', tls_ca: ftps.certificate }
            : { ...base, port: ftp.port },
        put: (files) => putOnDisk(dir, files),
        uri: (key, variant = 'ftp') =>
          variant === 'ftps'
            ? `ftps://${ftps.host}:${ftps.port}/${name}/${key}`
            : `ftp://${ftp.host}:${ftp.port}/${name}/${key}`,
      };
    },
    wrongCredentials: (place) => [
      {
        label: 'a wrong password',
        config: { ...place.config(), password: { secret: 'ftp-wrong-password' } },
        check: 'login',
        detail: /refused the password of user "loader" \(530 /,
      },
      {
        label: 'an FTPS server whose certificate is not trusted',
        config: { ...place.config('ftps'), tls_ca: undefined },
        check: 'login',
        detail: /TLS certificate is not trusted .*self-signed/,
      },
    ],
    missingPlace: (place) => ({
      config: { ...place.config(), root: `/${uniqueName()}` },
      error: /ftp:\/\/127\.0\.0\.1:\d+\/t[0-9a-f]+: 550 .*\(the folder does not exist or may not be read\)/,
    }),
  };
}
