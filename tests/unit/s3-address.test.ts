import { describe, expect, it } from 'vitest';
import { encodeKeyPath, objectAddress } from '../../src/sources/s3-get.js';

const minio = { endpoint: 'http://127.0.0.1:9000', region: 'us-east-1', forcePathStyle: true };
const aws = { region: 'eu-west-1', forcePathStyle: false };

describe('objectAddress (where the signed S3 GET goes)', () => {
  it('keeps `.` and `..` segments of a key as the key has them: it asks for that object, no other', () => {
    expect(objectAddress(minio, 'b', 'a/../x y.jsonl')).toEqual({
      protocol: 'http:',
      hostname: '127.0.0.1',
      host: '127.0.0.1:9000',
      port: 9000,
      path: '/b/a/../x%20y.jsonl',
    });
    expect(objectAddress(minio, 'b', './a/./b.jsonl').path).toBe('/b/./a/./b.jsonl');
  });

  it('encodes what S3 encodes and keeps the slashes', () => {
    expect(encodeKeyPath("dir/a+b %c/!'()*.jsonl")).toBe('dir/a%2Bb%20%25c/%21%27%28%29%2A.jsonl');
    expect(encodeKeyPath('ü/日本.jsonl')).toBe('%C3%BC/%E6%97%A5%E6%9C%AC.jsonl');
  });

  it('addresses AWS by virtual host, and by path for a bucket with dots or when asked', () => {
    expect(objectAddress(aws, 'my-bucket', 'k.jsonl')).toMatchObject({
      protocol: 'https:',
      host: 'my-bucket.s3.eu-west-1.amazonaws.com',
      path: '/k.jsonl',
    });
    expect(objectAddress(aws, 'my.bucket', 'k.jsonl')).toMatchObject({
      host: 's3.eu-west-1.amazonaws.com',
      path: '/my.bucket/k.jsonl',
    });
    expect(objectAddress({ ...aws, forcePathStyle: true }, 'my-bucket', 'k').path).toBe('/my-bucket/k');
  });

  it('keeps an endpoint’s own path before the bucket', () => {
    expect(objectAddress({ ...minio, endpoint: 'https://gw.example.com/s3/' }, 'b', 'k')).toMatchObject({
      protocol: 'https:',
      host: 'gw.example.com',
      port: undefined,
      path: '/s3/b/k',
    });
  });
});
