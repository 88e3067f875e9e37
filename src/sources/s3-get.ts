import { createHash, createHmac } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import { SignatureV4 } from '@smithy/signature-v4';
import type { Checksum, SourceData } from '@smithy/types';

/**
 * A GET of one object as a single signed HTTP request, without the SDK's per-request middleware
 * stack: on a run of 10,000 small files that stack was a third of the worker's main thread, which
 * is what bounds such a run. It answers the object on a 200, and an error answer's S3 code and
 * message (NoSuchKey, AccessDenied, …) for the caller to map as it maps the SDK's errors; for
 * anything else (an answer without an error document, a connection that fails) it answers
 * `undefined`, and the caller asks again through the SDK, whose retries and redirects apply.
 * Signed by the SDK's own SigV4 signer, with the client's credentials (refreshed by the client when
 * they come from the default chain), through the client's agents (the address policy).
 */
export type SignedGetter = (
  bucket: string,
  key: string,
) => Promise<SignedGetResult | SignedGetRefusal | undefined>;

export interface SignedGetResult {
  ok: true;
  body: Readable;
  etag: string | null;
  size: number;
}

/** An error answer with S3's error document: its code (NoSuchKey, AccessDenied, …) and message. */
export interface SignedGetRefusal {
  ok: false;
  status: number;
  code: string;
  message: string;
}

/** S3 error documents are a few hundred bytes; more than this is not one. */
const errorDocumentLimit = 64 * 1024;

function xmlText(doc: string, tag: string): string | undefined {
  const m = new RegExp(`<${tag}>([^<]*)</${tag}>`).exec(doc);
  return m?.[1]
    ?.replaceAll('&lt;', '<')
    .replaceAll('&gt;', '>')
    .replaceAll('&quot;', '"')
    .replaceAll('&apos;', "'")
    .replaceAll('&amp;', '&');
}

/** The code and message of an error answer, or undefined when it carries no S3 error document. */
async function refusalOf(res: http.IncomingMessage): Promise<SignedGetRefusal | undefined> {
  const chunks: Buffer[] = [];
  let length = 0;
  try {
    for await (const chunk of res) {
      length += (chunk as Buffer).length;
      if (length > errorDocumentLimit) {
        res.destroy();
        return undefined;
      }
      chunks.push(chunk as Buffer);
    }
  } catch {
    return undefined;
  }
  const doc = Buffer.concat(chunks).toString('utf8');
  const code = xmlText(doc, 'Code');
  if (!code) return undefined;
  const message = xmlText(doc, 'Message') ?? '';
  return { ok: false, status: res.statusCode ?? 0, code, message };
}

class NodeSha256 implements Checksum {
  private hash;
  constructor(private readonly secret?: SourceData) {
    this.hash = this.fresh();
  }
  private fresh() {
    return this.secret === undefined ? createHash('sha256') : createHmac('sha256', toBuffer(this.secret));
  }
  update(data: Uint8Array): void {
    this.hash.update(data);
  }
  async digest(): Promise<Uint8Array> {
    return this.hash.digest();
  }
  reset(): void {
    this.hash = this.fresh();
  }
}

function toBuffer(data: SourceData): Buffer {
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.from(data);
}

/** S3's encoding of a key in a path: RFC 3986 unreserved characters and `/` stay, the rest is %XX. */
export function encodeKeyPath(key: string): string {
  return key
    .split('/')
    .map((part) =>
      encodeURIComponent(part).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`),
    )
    .join('/');
}

/** A bucket name that can be a DNS label of a virtual host (no dots: TLS certificates cover one label). */
const virtualHostBucket = /^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/;

/** Where a GET goes: the parts of its URL, the path exactly as sent and signed. */
export interface ObjectAddress {
  protocol: 'http:' | 'https:';
  hostname: string;
  /** hostname[:port], the Host header. */
  host: string;
  port?: number;
  path: string;
}

/**
 * Where a GET of bucket/key goes, by the client's rules for path-style and virtual-hosted
 * addressing. The path is built as text, never parsed as a URL: a parser resolves `.` and `..`
 * segments (even percent-encoded ones), which would ask for another object than the key names.
 */
export function objectAddress(
  opts: { endpoint?: string; region: string; forcePathStyle: boolean },
  bucket: string,
  key: string,
): ObjectAddress {
  const base = new URL(opts.endpoint ?? `https://s3.${opts.region}.amazonaws.com`);
  const protocol = base.protocol === 'http:' ? 'http:' : 'https:';
  const prefix = base.pathname.replace(/\/+$/, '');
  const port = base.port ? Number(base.port) : undefined;
  const pathStyle = opts.forcePathStyle || !virtualHostBucket.test(bucket);
  const hostname = pathStyle ? base.hostname : `${bucket}.${base.hostname}`;
  return {
    protocol,
    hostname,
    host: port === undefined ? hostname : `${hostname}:${port}`,
    port,
    path: pathStyle
      ? `${prefix}/${encodeKeyPath(bucket)}/${encodeKeyPath(key)}`
      : `${prefix}/${encodeKeyPath(key)}`,
  };
}

export function signedGetter(
  client: S3Client,
  opts: {
    endpoint?: string;
    region: string;
    forcePathStyle: boolean;
    agents: { http: http.Agent; https: https.Agent };
  },
): SignedGetter {
  const signer = new SignatureV4({
    credentials: client.config.credentials,
    region: opts.region,
    service: 's3',
    sha256: NodeSha256,
    // S3 signs the path as sent, not encoded a second time.
    uriEscapePath: false,
    applyChecksum: false,
  });
  return async (bucket, key) => {
    const url = objectAddress(opts, bucket, key);
    const secure = url.protocol === 'https:';
    let signed: Awaited<ReturnType<SignatureV4['sign']>>;
    try {
      signed = await signer.sign({
        method: 'GET',
        protocol: url.protocol,
        hostname: url.hostname,
        port: url.port,
        path: url.path,
        query: {},
        headers: { host: url.host, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' },
      });
    } catch {
      // No credentials yet, or a provider that failed: the SDK path says why.
      return undefined;
    }
    return new Promise((resolve) => {
      const request = (secure ? https : http).request(
        {
          protocol: url.protocol,
          hostname: url.hostname,
          port: url.port,
          path: url.path,
          method: 'GET',
          headers: signed.headers,
          agent: secure ? opts.agents.https : opts.agents.http,
        },
        (res) => {
          if (res.statusCode !== 200) {
            void refusalOf(res).then(resolve);
            return;
          }
          const length = Number(res.headers['content-length']);
          resolve({
            ok: true,
            body: res,
            etag: typeof res.headers.etag === 'string' ? res.headers.etag : null,
            size: Number.isFinite(length) ? length : 0,
          });
        },
      );
      request.once('error', () => resolve(undefined));
      request.end();
    });
  };
}
