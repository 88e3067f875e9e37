/** Uploading bench objects to MinIO and the plain-SDK listing the no-op run is compared with. */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import {
  CreateBucketCommand,
  ListObjectsV2Command,
  type ListObjectsV2CommandOutput,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import type { S3Endpoint } from '../src/dev/minio.js';

export function s3Client(s3: S3Endpoint): S3Client {
  return new S3Client({
    endpoint: s3.endpoint,
    region: s3.region,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKey, secretAccessKey: s3.secretKey },
    // Same as the worker's store (src/storage/s3.ts): one retry at most, so a slow MinIO shows.
    maxAttempts: 2,
  });
}

export async function createBucket(client: S3Client, bucket: string): Promise<void> {
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
}

/** A file from disk, streamed (no multipart below 5 GB). */
export async function putFile(client: S3Client, bucket: string, key: string, path: string): Promise<void> {
  const { size } = await stat(path);
  await client.send(
    new PutObjectCommand({ Bucket: bucket, Key: key, Body: createReadStream(path), ContentLength: size }),
  );
}

export async function putBuffer(client: S3Client, bucket: string, key: string, body: Buffer): Promise<void> {
  await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
}

/** A ustar header block for a regular file (the only kind the archives below contain). */
function tarHeader(name: string, size: number, mtime: number): Buffer {
  if (Buffer.byteLength(name) > 100) throw new Error(`tar entry name too long: ${name}`);
  const h = Buffer.alloc(512);
  h.write(name, 0, 100, 'utf8');
  h.write('0000644\0', 100); // mode
  h.write('0000000\0', 108); // uid
  h.write('0000000\0', 116); // gid
  h.write(`${size.toString(8).padStart(11, '0')}\0`, 124);
  h.write(`${mtime.toString(8).padStart(11, '0')}\0`, 136);
  h.write('        ', 148); // checksum field counts as spaces while summing
  h.write('0', 156); // regular file
  h.write('ustar\0', 257);
  h.write('00', 263);
  let sum = 0;
  for (const byte of h) sum += byte;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  return h;
}

/**
 * Puts many small objects with one request: MinIO's "snowball" auto-extract unpacks an uploaded
 * tar into one ordinary object per entry (own ETag = MD5, own listing entry). Individual PUTs of
 * tiny objects ran at a few hundred per second here, which made seeding 100,000 of them take
 * minutes; this is several times faster and the objects are the same.
 */
export async function putExtractedTar(
  client: S3Client,
  bucket: string,
  objects: { key: string; body: Buffer }[],
): Promise<void> {
  const mtime = Math.floor(Date.now() / 1000);
  const parts: Buffer[] = [];
  for (const o of objects) {
    parts.push(
      tarHeader(o.key, o.body.length, mtime),
      o.body,
      Buffer.alloc((512 - (o.body.length % 512)) % 512),
    );
  }
  parts.push(Buffer.alloc(1024)); // end-of-archive marker
  await client.send(
    new PutObjectCommand({
      Bucket: bucket,
      Key: `snowball-${objects[0]?.key ?? 'empty'}.tar`,
      Body: Buffer.concat(parts),
      Metadata: { 'snowball-auto-extract': 'true' },
    }),
  );
}

/** Runs `fn` over 0 … count-1 with at most `limit` calls in flight; rejects on the first failure. */
export async function forEachLimit(
  count: number,
  limit: number,
  fn: (i: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < count) {
      const i = next++;
      await fn(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, count) }, lane));
}

export interface Listed {
  key: string;
  size: number;
  etag: string | null;
  modifiedAt: Date | null;
}

/**
 * Lists a prefix with ListObjectsV2, 1,000 keys a page, the way the worker's S3 store does:
 * the baseline a no-op run is measured against. `collect` keeps the objects (for seeding).
 */
export async function listAll(
  client: S3Client,
  bucket: string,
  prefix: string,
  collect = false,
): Promise<{ count: number; pages: number; objects: Listed[] }> {
  let token: string | undefined;
  let count = 0;
  let pages = 0;
  const objects: Listed[] = [];
  do {
    const out: ListObjectsV2CommandOutput = await client.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token, MaxKeys: 1000 }),
    );
    pages++;
    for (const o of out.Contents ?? []) {
      if (o.Key === undefined) continue;
      count++;
      if (collect)
        objects.push({
          key: o.Key,
          size: o.Size ?? 0,
          etag: o.ETag ?? null,
          modifiedAt: o.LastModified ?? null,
        });
    }
    token = out.IsTruncated ? out.NextContinuationToken : undefined;
  } while (token);
  return { count, pages, objects };
}
