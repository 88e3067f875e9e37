import { randomUUID } from 'node:crypto';
import { type AddressInfo, createServer } from 'node:net';
import type postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { inProcessClient } from '../../src/api/in-process.js';
import { createToken, ensureTenant } from '../../src/auth/tokens.js';
import { type Harness, startHarness, storeMinioCredentials } from '../helpers/harness.js';
import { createRemoteDatabase } from '../helpers/remote-db.js';

/**
 * Seed 004's database connections, part 1: a `postgres` connection (the test cluster's second
 * database is the remote), its test, its catalog and the schema refresh of `POST /refresh`.
 */
let h: Harness;
let remote: postgres.Sql;
let remoteDb: string;
let remoteDatabase: Awaited<ReturnType<typeof createRemoteDatabase>> | undefined;
const url = new URL(inject('databaseUrl'));

type ErrorBody = { error_code: string; field?: string; detail: string };
type Checks = { ok: boolean; checks: { name: string; ok: boolean; detail: string }[] };
type Refreshed = {
  connections_refreshed: number;
  tables_discovered: number;
  tables_added: number;
  tables_removed: number;
  tables_modified: number;
  errors?: { connection_id: string; error: string }[];
};
type Table = {
  schema_name: string;
  table_name: string;
  columns: { name: string; type: string; nullable: boolean; position: number }[];
  column_fingerprint: string;
  cached_version: string | null;
  rows_cached: number | null;
  bytes_cached: number | null;
  last_synced_at: string | null;
  discovered_at: string;
  updated_at: string;
};

const remoteConfig = (over: Record<string, unknown> = {}) => ({
  host: '127.0.0.1',
  port: Number(url.port),
  database: remoteDb,
  user: decodeURIComponent(url.username),
  password: { secret: 'remote-pg-password' },
  ssl_mode: 'disable',
  schemas: ['app', 'public'],
  cache_schema: 'cache_remote',
  ...over,
});

async function createPgConnection(api: Harness['api'], over: Record<string, unknown> = {}): Promise<string> {
  const res = await api<{ id: string }>('POST', '/api/v1/connections', {
    name: `pg-${randomUUID().slice(0, 8)}`,
    kind: 'postgres',
    config: remoteConfig(over),
  });
  if (res.status !== 201) throw new Error(`connection not created: ${JSON.stringify(res.body)}`);
  return res.body.id;
}

async function tablesOf(connectionId: string): Promise<Table[]> {
  const res = await h.api<{ items: Table[] }>('GET', `/api/v1/connections/${connectionId}/tables`);
  expect(res.status).toBe(200);
  return res.body.items;
}

beforeAll(async () => {
  h = await startHarness();
  remoteDatabase = await createRemoteDatabase(h, { max: 1 });
  remoteDb = remoteDatabase.name;
  remote = remoteDatabase.sql;
  await remote.unsafe(`
    create schema app;
    create table app.users (id integer primary key, name text);
    create table app.orders (id bigint, user_id integer not null, total numeric(10,2));
    create table public.keep (k text);
    create schema other;
    create table other.ignored (x int);`);
  for (const [name, value] of [
    ['remote-pg-password', decodeURIComponent(url.password)],
    ['wrong-pg-password', 'not-the-password'],
  ] as const) {
    expect((await h.api('PUT', `/api/v1/secrets/${name}`, { value })).status).toBe(200);
  }
});

afterAll(async () => {
  await remoteDatabase?.drop();
  await h?.close();
});

describe('postgres connections', () => {
  it('are created, and their test connects and lists the tables of the configured schemas', async () => {
    const id = await createPgConnection(h.api);
    const res = await h.api<Checks>('POST', `/api/v1/connections/${id}/test`);
    expect(res.status).toBe(200);
    expect(res.body.checks.map((c) => [c.name, c.ok])).toEqual([
      ['address', true],
      ['credentials', true],
      ['login', true],
      ['tables', true],
    ]);
    expect(res.body.ok).toBe(true);
    expect(res.body.checks[2]!.detail).toContain(`logged in to database "${remoteDb}"`);
    expect(res.body.checks[3]!.detail).toBe('3 tables readable in schemas app, public');

    const shown = await h.api<{ kind: string; config: Record<string, unknown> }>(
      'GET',
      `/api/v1/connections/${id}`,
    );
    expect(shown.body.kind).toBe('postgres');
    expect(shown.body.config.password).toEqual({ secret: 'remote-pg-password' });
    // The secret it names cannot be deleted from under it.
    expect((await h.api('DELETE', '/api/v1/secrets/remote-pg-password')).status).toBe(409);
  });

  it('with a wrong password fail the login check, and a refresh reports the error', async () => {
    const id = await createPgConnection(h.api, { password: { secret: 'wrong-pg-password' } });
    const res = await h.api<Checks>('POST', `/api/v1/connections/${id}/test`);
    expect(res.status).toBe(200);
    expect(res.body.ok).toBe(false);
    const login = res.body.checks.find((c) => c.name === 'login')!;
    expect(login.ok).toBe(false);
    expect(login.detail).toMatch(/password authentication failed/);
    expect(res.body.checks.map((c) => c.name)).not.toContain('tables');

    const refreshed = await h.api<Refreshed>('POST', '/api/v1/refresh', { connection_id: id });
    expect(refreshed.status).toBe(200);
    expect(refreshed.body.connections_refreshed).toBe(0);
    expect(refreshed.body.errors).toEqual([
      { connection_id: id, error: expect.stringMatching(/password authentication failed/) },
    ]);
    expect(await tablesOf(id)).toEqual([]);
  });

  it('with nothing listening, a server that is not Postgres, or TLS required of one without it, fail the login check', async () => {
    const closed = await new Promise<number>((resolve) => {
      const server = createServer();
      server.listen(0, '127.0.0.1', () => {
        const { port } = server.address() as AddressInfo;
        server.close(() => resolve(port));
      });
    });
    // Answers like an HTTP server and hangs up: postgres.js alone would reconnect to it for ever.
    const notPostgres = createServer((socket) => socket.end('HTTP/1.1 400 Bad Request\r\n\r\n'));
    await new Promise<void>((resolve) => notPostgres.listen(0, '127.0.0.1', resolve));
    try {
      const [refused, http, tls] = await Promise.all([
        createPgConnection(h.api, { port: closed }),
        createPgConnection(h.api, { port: (notPostgres.address() as AddressInfo).port }),
        createPgConnection(h.api, { ssl_mode: 'require' }),
      ]);
      const loginOf = async (id: string) => {
        const res = await h.api<Checks>('POST', `/api/v1/connections/${id}/test`);
        expect(res.body.ok).toBe(false);
        return res.body.checks.find((c) => c.name === 'login')!;
      };
      const [a, b, c] = await Promise.all([loginOf(refused), loginOf(http), loginOf(tls)]);
      expect(a).toMatchObject({ ok: false, detail: expect.stringMatching(/ECONNREFUSED/) });
      expect(b).toMatchObject({ ok: false, detail: expect.stringMatching(/login: no answer within 4 s/) });
      expect(c.ok).toBe(false);
    } finally {
      notPostgres.close();
    }
  });

  it('with a refused address: 400 at creation; a stored one fails its address check and never connects', async () => {
    const refused = await h.api<ErrorBody>('POST', '/api/v1/connections', {
      name: 'pg-metadata',
      kind: 'postgres',
      config: remoteConfig({ host: '169.254.169.254' }),
    });
    expect(refused.status).toBe(400);
    expect(refused.body).toMatchObject({ error_code: 'ENDPOINT_NOT_ALLOWED', field: 'config.host' });

    // As if it had been stored before the policy changed.
    const id = await createPgConnection(h.api);
    await h.sql`
      update autoloader.connections set config = jsonb_set(config, '{host}', '"169.254.169.254"')
      where id = ${id}`;
    const res = await h.api<Checks>('POST', `/api/v1/connections/${id}/test`);
    expect(res.body.ok).toBe(false);
    expect(res.body.checks).toEqual([
      { name: 'address', ok: false, detail: expect.stringContaining('a cloud metadata address') },
    ]);
    // The refresh goes straight to the connection: the policy refuses it when the socket is made.
    const refreshed = await h.api<Refreshed>('POST', '/api/v1/refresh', { connection_id: id });
    expect(refreshed.body.errors?.[0]?.error).toContain('169.254.169.254, a cloud metadata address');
  });

  it('are not an ingestion’s source', async () => {
    const id = await createPgConnection(h.api);
    const res = await h.api<ErrorBody>('POST', '/api/v1/ingestions', {
      name: `pg-ing-${randomUUID().slice(0, 8)}`,
      connection_id: id,
      source: { format: 'jsonl' },
      destination: 'raw.from_pg',
    });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ error_code: 'VALIDATION_ERROR', field: 'connection_id' });
  });

  it('refuse an invalid cache_schema', async () => {
    const res = await h.api<ErrorBody>('POST', '/api/v1/connections', {
      name: 'pg-bad-cache',
      kind: 'postgres',
      config: remoteConfig({ cache_schema: 'Cache' }),
    });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ error_code: 'VALIDATION_ERROR', field: 'config.cache_schema' });
  });
});

describe('schema refresh', () => {
  let id: string;

  it('discovers the remote’s tables into the catalog, with their columns', async () => {
    id = await createPgConnection(h.api);
    expect(await tablesOf(id)).toEqual([]);
    const res = await h.api<Refreshed>('POST', '/api/v1/refresh', { connection_id: id });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      connections_refreshed: 1,
      tables_discovered: 3,
      tables_added: 3,
      tables_removed: 0,
      tables_modified: 0,
    });
    const tables = await tablesOf(id);
    expect(tables.map((t) => `${t.schema_name}.${t.table_name}`)).toEqual([
      'app.orders',
      'app.users',
      'public.keep',
    ]);
    expect(tables[0]).toEqual({
      schema_name: 'app',
      table_name: 'orders',
      columns: [
        { name: 'id', type: 'bigint', nullable: true, position: 1 },
        { name: 'user_id', type: 'integer', nullable: false, position: 2 },
        { name: 'total', type: 'numeric(10,2)', nullable: true, position: 3 },
      ],
      column_fingerprint: expect.stringMatching(/^[0-9a-f]{64}$/),
      cached_version: null,
      rows_cached: null,
      bytes_cached: null,
      last_synced_at: null,
      discovered_at: expect.stringMatching(/Z$/),
      updated_at: expect.stringMatching(/Z$/),
    });

    // Nothing changed: nothing counted, nothing written.
    const again = await h.api<Refreshed>('POST', '/api/v1/refresh', { connection_id: id });
    expect(again.body).toMatchObject({ tables_discovered: 3, tables_added: 0, tables_removed: 0 });
    expect(again.body.tables_modified).toBe(0);
    expect(await tablesOf(id)).toEqual(tables);
  });

  it('counts an added, a removed and a modified table, and leaves unchanged ones untouched', async () => {
    // As if data refreshes had cached two of them: a schema refresh keeps what they recorded.
    await h.sql`
      update autoloader.connection_tables set cached_version = 'v_' || table_name, rows_cached = 7
      where connection_id = ${id} and schema_name = 'app'`;
    const before = await tablesOf(id);
    await remote.unsafe(`
      create table app.events (at timestamptz not null);
      drop table public.keep;
      alter table app.orders add column note varchar(20);`);

    const res = await h.api<Refreshed>('POST', '/api/v1/refresh', { connection_id: id });
    expect(res.body).toEqual({
      connections_refreshed: 1,
      tables_discovered: 3,
      tables_added: 1,
      tables_removed: 1,
      tables_modified: 1,
    });
    const after = await tablesOf(id);
    expect(after.map((t) => `${t.schema_name}.${t.table_name}`)).toEqual([
      'app.events',
      'app.orders',
      'app.users',
    ]);
    const byName = (list: Table[], name: string) => list.find((t) => t.table_name === name)!;
    expect(byName(after, 'users')).toEqual(byName(before, 'users'));
    const orders = byName(after, 'orders');
    expect(orders.columns.at(-1)).toEqual({
      name: 'note',
      type: 'character varying(20)',
      nullable: true,
      position: 4,
    });
    expect(orders.column_fingerprint).not.toBe(byName(before, 'orders').column_fingerprint);
    expect(orders).toMatchObject({ cached_version: 'v_orders', rows_cached: 7 });
    expect(byName(after, 'events').columns).toEqual([
      { name: 'at', type: 'timestamp with time zone', nullable: false, position: 1 },
    ]);
  });

  it('leaves the catalog with its connection', async () => {
    const other = await createPgConnection(h.api);
    await h.api('POST', '/api/v1/refresh', { connection_id: other });
    expect(await tablesOf(other)).toHaveLength(3);
    expect((await h.api('DELETE', `/api/v1/connections/${other}`)).status).toBe(204);
    const rows = await h.sql`select 1 from autoloader.connection_tables where connection_id = ${other}`;
    expect(rows).toHaveLength(0);
  });

  it('pages the catalog', async () => {
    const first = await h.api<{ items: Table[]; next_cursor: string | null }>(
      'GET',
      `/api/v1/connections/${id}/tables?limit=2`,
    );
    expect(first.body.items.map((t) => t.table_name)).toEqual(['events', 'orders']);
    expect(first.body.next_cursor).not.toBeNull();
    const second = await h.api<{ items: Table[]; next_cursor: string | null }>(
      'GET',
      `/api/v1/connections/${id}/tables?limit=2&cursor=${first.body.next_cursor}`,
    );
    expect(second.body.items.map((t) => t.table_name)).toEqual(['users']);
    expect(second.body.next_cursor).toBeNull();
    const bad = await h.api<ErrorBody>('GET', `/api/v1/connections/${id}/tables?cursor=nonsense`);
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ error_code: 'VALIDATION_ERROR', field: 'cursor' });
  });

  it('runs as a Temporal workflow named after the connection', async () => {
    const list = h.client.workflow.list({
      query: `WorkflowType = 'schemaRefreshWorkflow' AND WorkflowId STARTS_WITH 'connection/${id}/schema-refresh/'`,
    });
    const seen: string[] = [];
    for await (const wf of list) seen.push(wf.status.name);
    expect(seen.length).toBeGreaterThan(0);
    expect(new Set(seen)).toEqual(new Set(['COMPLETED']));
  });

  it('is 404 for an unknown connection or table', async () => {
    const conn = await h.api<ErrorBody>('POST', '/api/v1/refresh', { connection_id: 'conn_nope' });
    expect(conn.status).toBe(404);
    expect(conn.body.error_code).toBe('CONNECTION_NOT_FOUND');
    const table = await h.api<ErrorBody>('POST', '/api/v1/refresh', {
      connection_id: id,
      schema_name: 'app',
      table_name: 'nope',
      data: true,
    });
    expect(table.status).toBe(404);
    expect(table.body.error_code).toBe('TABLE_NOT_FOUND');
    const tables = await h.api<ErrorBody>('GET', '/api/v1/connections/conn_nope/tables');
    expect(tables.status).toBe(404);
    expect(tables.body.error_code).toBe('CONNECTION_NOT_FOUND');
  });

  it.each([
    [{ schema_name: 'public' }, 'schema_name', 'schema_name requires connection_id'],
    [{ connection_id: 'c', table_name: 'users' }, 'table_name', 'table_name requires schema_name'],
    [{ data: true }, 'data', 'data refresh requires connection_id'],
    [
      { connection_id: 'c', schema_name: 'public' },
      'schema_name',
      'schema-level refresh not supported; omit schema_name to refresh entire connection',
    ],
    [
      { connection_id: 'c', schema_name: 'public', data: true },
      'table_name',
      'data refresh with schema_name requires table_name',
    ],
    [
      { connection_id: 'c', schema_name: 'public', table_name: 'users' },
      'table_name',
      'schema refresh cannot target specific table; use data: true for table data refresh',
    ],
  ])('refuses %j: 400 with seed 004’s message', async (body, field, message) => {
    const res = await h.api<ErrorBody>('POST', '/api/v1/refresh', body);
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ error_code: 'VALIDATION_ERROR', field });
    expect(res.body.detail).toBe(`Invalid body: ${message}`);
  });

  it('refreshes an object-store connection by id too: its tables are its ingestions’ (none here)', async () => {
    const s3Id = await h.createS3Connection();
    const res = await h.api<Refreshed>('POST', '/api/v1/refresh', { connection_id: s3Id });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      connections_refreshed: 1,
      tables_discovered: 0,
      tables_added: 0,
      tables_removed: 0,
      tables_modified: 0,
    });
  });

  it('needs connection:refresh', async () => {
    const { token } = await createToken(h.db, {
      tenantId: h.tenantId,
      name: 'reader',
      subject: 'reader@example.com',
      permissions: ['connection:read', 'connection:write'],
    });
    const res = await inProcessClient(h.app, token)<ErrorBody>('POST', '/api/v1/refresh', {
      connection_id: id,
    });
    expect(res.status).toBe(403);
    expect(res.body.error_code).toBe('INSUFFICIENT_PERMISSIONS');
  });
});

describe('tenants', () => {
  it('{} refreshes the tenant’s database connections only; another tenant neither sees nor refreshes them', async () => {
    const tenantId = `tenant_${randomUUID().slice(0, 8)}`;
    await ensureTenant(h.db, tenantId, 'db tenant', {});
    const { token } = await createToken(h.db, { tenantId, name: 'db', subject: 'db@example.com' });
    const api = inProcessClient(h.app, token);
    expect(
      (await api('PUT', '/api/v1/secrets/remote-pg-password', { value: decodeURIComponent(url.password) }))
        .status,
    ).toBe(200);
    // An object-store connection of the same tenant is left out of `{}`.
    await storeMinioCredentials(api, inject('s3'));
    const s3 = await api('POST', '/api/v1/connections', {
      name: 'minio',
      kind: 's3',
      config: {
        endpoint: inject('s3').endpoint,
        region: inject('s3').region,
        force_path_style: true,
        access_key_id: { secret: 'minio-access-key' },
        secret_access_key: { secret: 'minio-secret-key' },
      },
    });
    expect(s3.status).toBe(201);
    const mine = await createPgConnection(api, { schemas: ['other'] });

    // Both connections: the s3 one has no ingestions, so no tables (store-connection-refresh.test.ts).
    const all = await api<Refreshed>('POST', '/api/v1/refresh', {});
    expect(all.status).toBe(200);
    expect(all.body).toEqual({
      connections_refreshed: 2,
      tables_discovered: 1,
      tables_added: 1,
      tables_removed: 0,
      tables_modified: 0,
    });

    // The harness's tenant: its connections are not this tenant's, and this one is not its.
    const theirs = await createPgConnection(h.api, { schemas: ['other'] });
    for (const [client, other] of [
      [api, theirs],
      [h.api, mine],
    ] as const) {
      const tables = await client<ErrorBody>('GET', `/api/v1/connections/${other}/tables`);
      expect(tables.status).toBe(404);
      expect(tables.body.error_code).toBe('CONNECTION_NOT_FOUND');
      const refreshed = await client<ErrorBody>('POST', '/api/v1/refresh', { connection_id: other });
      expect(refreshed.status).toBe(404);
      expect(refreshed.body.error_code).toBe('CONNECTION_NOT_FOUND');
      const tested = await client<ErrorBody>('POST', `/api/v1/connections/${other}/test`);
      expect(tested.status).toBe(404);
    }
    const again = await api<Refreshed>('POST', '/api/v1/refresh', {});
    expect(again.body.connections_refreshed).toBe(2);
    const rows = await h.sql`select 1 from autoloader.connection_tables where connection_id = ${theirs}`;
    expect(rows).toHaveLength(0);
  });
});
