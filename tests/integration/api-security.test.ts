import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createToken, ensureTenant } from '../../src/auth/tokens.js';
import { type Harness, startHarness } from '../helpers/harness.js';

let h: Harness;
let connectionId: string;
let bucket: string;
beforeAll(async () => {
  h = await startHarness();
  connectionId = await h.createS3Connection();
  bucket = await h.createBucket();
});
afterAll(async () => {
  await h?.close();
});

const countIngestions = async () => {
  const [r] =
    await h.sql`select count(*)::int as n from autoloader.ingestions where tenant_id = ${h.tenantId}`;
  return r!.n as number;
};

const validIngestion = () => ({
  name: `ing-${randomUUID().slice(0, 8)}`,
  connection_id: connectionId,
  source: { bucket, format: 'jsonl' },
  destination: `raw.t_${randomUUID().slice(0, 8)}`,
});

describe('bad requests are refused with a documented 4xx and create nothing', () => {
  it.each([
    [
      'a missing field',
      (b: Record<string, unknown>) => ({ ...b, connection_id: undefined }),
      'connection_id',
    ],
    [
      'a destination with SQL in it',
      (b: Record<string, unknown>) => ({ ...b, destination: 'raw.x; drop table y' }),
      'destination',
    ],
    [
      'a quoted identifier',
      (b: Record<string, unknown>) => ({ ...b, destination: 'raw."X"' }),
      'destination',
    ],
    [
      'a system schema',
      (b: Record<string, unknown>) => ({ ...b, destination: 'pg_catalog.t' }),
      'destination',
    ],
    [
      'an unknown format',
      (b: Record<string, unknown>) => ({ ...b, source: { bucket, format: 'xml' } }),
      'source.format',
    ],
    [
      'an s3 source without a bucket',
      (b: Record<string, unknown>) => ({ ...b, source: { format: 'jsonl' } }),
      'source.bucket',
    ],
  ])('%s', async (_label, mutate, field) => {
    const before = await countIngestions();
    const res = await h.api<{ error_code: string; field: string; detail: string }>(
      'POST',
      '/api/v1/ingestions',
      mutate(validIngestion()),
    );
    expect(res.status).toBe(400);
    expect(res.body.error_code).toBe('VALIDATION_ERROR');
    expect(res.body.field.startsWith(field)).toBe(true);
    expect(res.body.detail).toContain(field);
    expect(await countIngestions()).toBe(before);
  });

  it('refuses a body that is not JSON', async () => {
    const res = await h.api('POST', '/api/v1/ingestions', '{"name": ', {
      'content-type': 'application/json',
    });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ error_code: 'MALFORMED_BODY' });
  });

  it('refuses credentials given as values instead of env-var names', async () => {
    const res = await h.api('POST', '/api/v1/connections', {
      name: 'leaky',
      kind: 's3',
      config: { region: 'us-east-1', access_key_id_env: 'AKIA/secret+value' },
    });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ error_code: 'VALIDATION_ERROR', field: 'config.access_key_id_env' });
  });

  it('never echoes a connection secret: only references come back', async () => {
    const res = await h.api<{ config: Record<string, unknown> }>(
      'GET',
      `/api/v1/connections/${connectionId}`,
    );
    expect(res.status).toBe(200);
    expect(JSON.stringify(res.body)).not.toContain(inject('s3').secretKey);
    expect(res.body.config.secret_access_key).toEqual({ secret: 'minio-secret-key' });
  });
});

describe('authentication and tenancy', () => {
  it('answers 401 without a token or with a wrong one', async () => {
    const none = await h.app.request('/api/v1/ingestions');
    expect(none.status).toBe(401);
    expect(await none.json()).toMatchObject({ error_code: 'UNAUTHORIZED' });
    const wrong = await h.app.request('/api/v1/ingestions', {
      headers: { authorization: 'Bearer al_not-a-token' },
    });
    expect(wrong.status).toBe(401);
  });

  it("shows another tenant's ingestion exactly like a missing one", async () => {
    const mine = await h.api<{ id: string }>('POST', '/api/v1/ingestions', validIngestion());
    expect(mine.status).toBe(201);

    const otherTenant = `tenant_${randomUUID().slice(0, 8)}`;
    await ensureTenant(h.db, otherTenant, 'other');
    const { token } = await createToken(h.db, { tenantId: otherTenant, name: 'other', subject: 'eve' });
    const as = (path: string, method = 'GET') =>
      h.app.request(path, { method, headers: { authorization: `Bearer ${token}` } });

    const theirs = await as(`/api/v1/ingestions/${mine.body.id}`);
    const missing = await as('/api/v1/ingestions/ing_doesnotexist');
    expect(theirs.status).toBe(404);
    expect(await theirs.json()).toEqual(await missing.json());
    expect((await as(`/api/v1/ingestions/${mine.body.id}/run`, 'POST')).status).toBe(404);
    expect(
      (await as(`/api/v1/ingestions/${mine.body.id}/processed-files?confirm=true`, 'DELETE')).status,
    ).toBe(404);
    const list = (await (await as('/api/v1/ingestions')).json()) as { items: unknown[] };
    expect(list.items).toEqual([]);
    const runs =
      await h.sql`select count(*)::int as n from autoloader.runs where ingestion_id = ${mine.body.id}`;
    expect(runs[0]!.n).toBe(0);
  });
});

describe('documentation', () => {
  it('serves the OpenAPI document and the reference over it without a token, and nothing else opens', async () => {
    const doc = (await (await h.app.request('/openapi.json')).json()) as { paths: Record<string, unknown> };
    expect(Object.keys(doc.paths)).toContain('/api/v1/ingestions/{id}/run');
    expect(Object.keys(doc.paths)).toContain('/api/v1/ingestions/{id}/processed-files');
    const page = await h.app.request('/docs');
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    // Swagger UI reads the document the page names; tests/integration/api-docs.test.ts covers the rest.
    expect(await page.text()).toContain('data-spec-url="/openapi.json"');
    expect((await h.app.request('/api/v1/ingestions')).status).toBe(401);
    expect((await h.app.request('/docs/assets/../../package.json')).status).toBe(404);
  });
});
