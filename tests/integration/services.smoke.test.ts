/**
 * Proves the services started by tests/global-setup.ts are reachable, so a
 * broken environment fails here with a clear message rather than deep inside
 * a workflow test.
 */
import { CreateBucketCommand, HeadBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { Connection } from '@temporalio/client';
import postgres from 'postgres';
import { describe, expect, inject, it } from 'vitest';

describe('test services', () => {
  it('Postgres answers select 1', async () => {
    const sql = postgres(inject('databaseUrl'), { max: 1, onnotice: () => undefined });
    try {
      const [row] = await sql<{ one: number }[]>`select 1 as one`;
      expect(row?.one).toBe(1);
    } finally {
      await sql.end();
    }
  });

  it('Temporal answers getSystemInfo', async () => {
    const connection = await Connection.connect({ address: inject('temporalAddress') });
    try {
      const info = await connection.workflowService.getSystemInfo({});
      expect(info.serverVersion).toMatch(/^\d+\.\d+/);
      const ns = await connection.workflowService.describeNamespace({ namespace: 'default' });
      expect(ns.namespaceInfo?.name).toBe('default');
    } finally {
      await connection.close();
    }
  });

  const s3 = inject('s3');
  it('MinIO creates a bucket', async () => {
    const client = new S3Client({
      endpoint: s3.endpoint,
      region: s3.region,
      forcePathStyle: true,
      credentials: { accessKeyId: s3.accessKey, secretAccessKey: s3.secretKey },
    });
    try {
      const bucket = `smoke-${process.pid}-${Date.now()}`;
      await client.send(new CreateBucketCommand({ Bucket: bucket }));
      const head = await client.send(new HeadBucketCommand({ Bucket: bucket }));
      expect(head.$metadata.httpStatusCode).toBe(200);
    } finally {
      client.destroy();
    }
  });
});
