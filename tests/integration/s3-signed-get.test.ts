/**
 * An object read from S3 goes by one signed request (src/sources/s3-get.ts) when the answer is a
 * plain 200, and through the SDK otherwise. Against real MinIO: keys that need encoding read back
 * byte for byte by the signed request itself (a wrong signature would have fallen back silently),
 * a missing object and a wrong secret still end as the SDK's errors say, and the address policy
 * holds on the signed request as on the SDK's.
 */
import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { guardedAgents } from '../../src/net/address-policy.js';
import { createS3Client, s3Kind } from '../../src/sources/s3.js';
import { signedGetter } from '../../src/sources/s3-get.js';
import { SourceConfigError, SourceFileMissingError } from '../../src/sources/types.js';
import { tenantPolicySchema } from '../../src/tenancy/policy.js';

const endpoint = inject('s3');
const bucket = `sg-${randomUUID().slice(0, 18)}`;
const permissive = { allowPrivate: true, allowList: [] };
const keys = [
  'plain/part-0001.jsonl',
  'spaces and plus/a b+c.jsonl',
  "reserved/!'()*&$,;=@:.jsonl",
  'percent/100%25 %zz.jsonl',
  'unicode/ümlaut/日本語.jsonl',
  'tilde~and_dash-/x.jsonl',
];
const body = (key: string) => `{"key": ${JSON.stringify(key)}}\n`;

async function text(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

const credentials = (secret = endpoint.secretKey) => ({
  accessKeyId: endpoint.accessKey,
  secretAccessKey: secret,
  sessionToken: undefined,
});
const config = { endpoint: endpoint.endpoint, region: endpoint.region, forcePathStyle: true };

function getter(secret?: string, address = permissive) {
  const agents = guardedAgents(address);
  const client = createS3Client(
    { endpoint: endpoint.endpoint, region: endpoint.region, force_path_style: true },
    credentials(secret),
    address,
    agents,
  );
  return signedGetter(client, { ...config, agents });
}

/** The store as a connection makes it, with its credentials as env references. */
async function store(secret = endpoint.secretKey) {
  const env: Record<string, string> = { SG_KEY: endpoint.accessKey, SG_SECRET: secret };
  return s3Kind.createStore(
    s3Kind.configSchema.parse({
      endpoint: endpoint.endpoint,
      region: endpoint.region,
      force_path_style: true,
      access_key_id: { env: 'SG_KEY' },
      secret_access_key: { env: 'SG_SECRET' },
    }),
    {
      tenantId: 't',
      policy: tenantPolicySchema.parse({ env_prefixes: ['SG_'] }),
      secrets: {
        check: async () => undefined,
        resolve: async (ref) => ('env' in ref ? env[ref.env]! : ''),
      },
      address: permissive,
    },
  );
}

beforeAll(async () => {
  const admin = new S3Client({
    endpoint: endpoint.endpoint,
    region: endpoint.region,
    forcePathStyle: true,
    credentials: credentials(),
  });
  await admin.send(new CreateBucketCommand({ Bucket: bucket }));
  for (const key of keys)
    await admin.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body(key) }));
  admin.destroy();
});

describe('reading an S3 object by one signed request', () => {
  it('reads keys that need encoding byte for byte, with their ETag and size', async () => {
    const get = getter();
    for (const key of keys) {
      const got = await get(bucket, key);
      if (!got?.ok) throw new Error(`${key}: ${JSON.stringify(got)}`);
      expect(await text(got.body)).toBe(body(key));
      expect(got.size).toBe(Buffer.byteLength(body(key)));
      expect(got.etag).toMatch(/^"[0-9a-f]{32}"$/);
    }
  });

  it('answers the S3 error of a missing object or a wrong secret, which the store maps as it maps the SDK’s', async () => {
    expect(await getter()(bucket, 'no/such.jsonl')).toMatchObject({
      ok: false,
      status: 404,
      code: 'NoSuchKey',
    });
    expect(await getter('wrong-secret')(bucket, keys[0]!)).toMatchObject({
      ok: false,
      status: 403,
      code: 'SignatureDoesNotMatch',
    });
    await expect((await store()).open(bucket, 'no/such.jsonl')).rejects.toBeInstanceOf(
      SourceFileMissingError,
    );
    await expect((await store('wrong-secret')).open(bucket, keys[0]!)).rejects.toBeInstanceOf(
      SourceConfigError,
    );
    const ok = await (await store()).open(bucket, keys[1]!);
    expect(await text(ok.body)).toBe(body(keys[1]!));
  });

  it('connects only where the address policy allows', async () => {
    // The test MinIO listens on 127.0.0.1: a policy without private addresses refuses it.
    expect(await getter(undefined, { allowPrivate: false, allowList: [] })(bucket, keys[0]!)).toBeUndefined();
  });
});
