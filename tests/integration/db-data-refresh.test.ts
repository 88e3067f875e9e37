import { randomUUID } from 'node:crypto';
import { Worker } from '@temporalio/worker';
import type postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createActivities } from '../../src/activities/index.js';
import { inProcessClient } from '../../src/api/in-process.js';
import { createToken, ensureTenant } from '../../src/auth/tokens.js';
import { loadConfig } from '../../src/config.js';
import { connectWorker } from '../../src/temporal/connect.js';
import { workflowIds } from '../../src/temporal/ids.js';
import { activityDepsFromConfig } from '../../src/worker.js';
import { pendingDeletionWorkflow } from '../../src/workflows/pending-deletion.js';
import { type Harness, startHarness } from '../helpers/harness.js';
import { holdLock } from '../helpers/locks.js';
import { createRemoteDatabase } from '../helpers/remote-db.js';

/**
 * Seed 004's data refresh of database connections: a remote table copied into a new version of its
 * cached table, swapped in at the stable name, the previous version deleted after the grace period.
 * The remote is a second database in the test cluster (as in db-connections.test.ts).
 */
let h: Harness;
let remote: postgres.Sql;
let remoteDb: string;
let remoteDatabase: Awaited<ReturnType<typeof createRemoteDatabase>> | undefined;
const url = new URL(inject('databaseUrl'));
const cache = `cache_${randomUUID().replaceAll('-', '').slice(0, 10)}`;

type ErrorBody = { error_code: string; field?: string; detail: string; current_run_id?: string | null };
type TableResult = {
  connection_id: string;
  schema_name: string;
  table_name: string;
  rows_synced: number;
  duration_ms: number;
};
type ConnectionResult = {
  connection_id: string;
  tables_refreshed: number;
  tables_failed: number;
  total_rows: number;
  duration_ms: number;
  errors: { schema_name: string; table_name: string; error: string }[];
};
type Table = {
  schema_name: string;
  table_name: string;
  cached_version: string | null;
  rows_cached: number | null;
  bytes_cached: number | null;
  last_synced_at: string | null;
};
type Operation = {
  id: string;
  connection_id: string | null;
  ingestion_id: string | null;
  type: string;
  status: string;
  error: string | null;
  result: Record<string, unknown> | null;
  finished_at: string | null;
};
type Running = { status: 'running'; operation_id: string; operation_url: string; workflow_id: string };
type Deletion = { id: string; table_name: string; due_at: string; executed_at: string | null };

/** A connection over the given remote schemas, its catalog filled by a schema refresh. */
async function connectionOver(...schemas: string[]): Promise<string> {
  const res = await h.api<{ id: string }>('POST', '/api/v1/connections', {
    name: `pg-${randomUUID().slice(0, 8)}`,
    kind: 'postgres',
    config: {
      host: '127.0.0.1',
      port: Number(url.port),
      database: remoteDb,
      user: decodeURIComponent(url.username),
      password: { secret: 'remote-pg-password' },
      ssl_mode: 'disable',
      schemas,
      cache_schema: cache,
    },
  });
  if (res.status !== 201) throw new Error(`connection not created: ${JSON.stringify(res.body)}`);
  const refreshed = await h.api<{ tables_discovered: number }>('POST', '/api/v1/refresh', {
    connection_id: res.body.id,
  });
  expect(refreshed.status).toBe(200);
  return res.body.id;
}

const refreshTable = (api: Harness['api'], connectionId: string, schema: string, table: string) =>
  api<TableResult & ErrorBody & Running>('POST', '/api/v1/refresh', {
    connection_id: connectionId,
    schema_name: schema,
    table_name: table,
    data: true,
  });

async function catalogEntry(connectionId: string, schema: string, table: string): Promise<Table> {
  const res = await h.api<{ items: Table[] }>('GET', `/api/v1/connections/${connectionId}/tables`);
  expect(res.status).toBe(200);
  const t = res.body.items.find((i) => i.schema_name === schema && i.table_name === table);
  if (!t) throw new Error(`${schema}.${table} not in the catalog`);
  return t;
}

const countAt = async (table: string) =>
  Number((await h.sql.unsafe(`select count(*)::int as n from ${cache}.${table}`))[0]!.n);

async function tableExists(table: string): Promise<boolean> {
  const rows = await h.sql`
    select 1 from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = ${cache} and c.relname = ${table}`;
  return rows.length > 0;
}

/** Rows 1..n of a (id, label) table. */
async function fill(table: string, from: number, to: number): Promise<void> {
  await remote.unsafe(
    `insert into ${table} (id, label) select g, 'row ' || g from generate_series(${from}, ${to}) g`,
  );
}

/** The API as a second tenant sees it. */
async function otherTenantApi(): Promise<Harness['api']> {
  const tenantId = `other_${randomUUID().slice(0, 8)}`;
  await ensureTenant(h.db, tenantId, 'other tenant', {});
  const { token } = await createToken(h.db, { tenantId, name: 'other', subject: 'other@example.com' });
  return inProcessClient(h.app, token);
}

/** Holds an exclusive lock on a remote table until `release()`: a copy of it then waits. */
const lockRemote = (table: string) => holdLock(remote, table);

beforeAll(async () => {
  // Grace periods shortened (the contract): the deletion is carried out within the test.
  h = await startHarness({ refresh: { swapGraceSeconds: 1, responseWaitMs: 60_000 } });
  remoteDatabase = await createRemoteDatabase(h, { max: 2 });
  remoteDb = remoteDatabase.name;
  remote = remoteDatabase.sql;
  await remote.unsafe(`
    create schema basic;
    create table basic.users (id integer primary key, name text not null, tags text[], created timestamptz);
    insert into basic.users values (1, 'ada', '{a,b}', '2025-01-01T00:00:00Z'), (2, 'bob', null, null), (3, 'cy', '{}', now());
    create schema grace;
    create table grace.t (id integer, label text);
    create schema gone;
    create table gone.t (id integer, label text);
    create schema vanish;
    create table vanish.x (id integer, label text);
    create table vanish.y (id integer, label text);
    create schema swept;
    create table swept.x (id integer, label text);
    create schema taken;
    create table taken.t (id integer, label text);
    create schema five;
    create table five.t1 (id integer, label text);
    create table five.t2 (id integer, label text);
    create table five.t3 (id integer, label text);
    create table five.t4 (id integer, label text);
    create table five.t5 (id integer, label text);
    create schema partial;
    create table partial.a (id integer, label text);
    create table partial.b (id integer, label text);
    create table partial.c (id integer, label text);
    create schema reader;
    create table reader.big (id integer, label text);
    create schema locked;
    create table locked.t (id integer, label text);`);
  for (let i = 1; i <= 5; i++) await fill(`five.t${i}`, 1, i * 10);
  for (const t of ['a', 'b', 'c']) await fill(`partial.${t}`, 1, 7);
  await fill('grace.t', 1, 4);
  await fill('gone.t', 1, 5);
  await fill('vanish.x', 1, 3);
  await fill('vanish.y', 1, 2);
  await fill('swept.x', 1, 3);
  await fill('locked.t', 1, 3);
  await fill('reader.big', 1, 20_000);
  const secret = await h.api('PUT', '/api/v1/secrets/remote-pg-password', {
    value: decodeURIComponent(url.password),
  });
  expect(secret.status).toBe(200);
});

afterAll(async () => {
  await remoteDatabase?.drop();
  await h?.close();
});

describe('table data refresh (seed 004)', () => {
  it('makes new rows visible at the stable name, changes the version and schedules the old one', async () => {
    const id = await connectionOver('basic');
    // A grace period long enough to see the old version waiting.
    const api = inProcessClient(h.makeApp({ refresh: { swapGraceSeconds: 600 } }), h.token);

    const first = await refreshTable(api, id, 'basic', 'users');
    expect(first.status).toBe(200);
    expect(first.body).toEqual({
      connection_id: id,
      schema_name: 'basic',
      table_name: 'users',
      rows_synced: 3,
      duration_ms: expect.any(Number),
    });
    const cached = await h.sql.unsafe(
      `select id, name, tags, created from ${cache}.basic__users order by id`,
    );
    expect(cached.map((r) => [r.id, r.name, r.tags])).toEqual([
      [1, 'ada', ['a', 'b']],
      [2, 'bob', null],
      [3, 'cy', []],
    ]);
    expect(cached[0]!.created).toEqual(new Date('2025-01-01T00:00:00Z'));
    const v1 = await catalogEntry(id, 'basic', 'users');
    expect(v1.cached_version).toMatch(/^basic__users__v[0-9a-f]{8}$/);
    expect(v1).toMatchObject({ rows_cached: 3, last_synced_at: expect.any(String) });
    expect(v1.bytes_cached).toBeGreaterThan(0);
    // A first copy replaces nothing.
    const none = await h.api<{ items: Deletion[] }>('GET', '/api/v1/pending-deletions');
    expect(none.body.items.filter((d) => d.table_name.startsWith(`${cache}.basic__users`))).toEqual([]);

    await remote`insert into basic.users (id, name) values (4, 'dee'), (5, 'eve')`;
    const second = await refreshTable(api, id, 'basic', 'users');
    expect(second.status).toBe(200);
    expect(second.body.rows_synced).toBe(5);
    expect(await countAt('basic__users')).toBe(5);
    const v2 = await catalogEntry(id, 'basic', 'users');
    expect(v2.cached_version).toMatch(/^basic__users__v[0-9a-f]{8}$/);
    expect(v2.cached_version).not.toBe(v1.cached_version);
    expect(v2.rows_cached).toBe(5);

    const pending = await h.api<{ items: Deletion[] }>('GET', '/api/v1/pending-deletions');
    const old = pending.body.items.filter((d) => d.table_name.startsWith(`${cache}.basic__users__v`));
    expect(old).toHaveLength(1);
    expect(new Date(old[0]!.due_at).getTime()).toBeGreaterThan(Date.now() + 500_000);
    // Until then the old version is still there, complete.
    expect(await countAt(old[0]!.table_name.slice(cache.length + 1))).toBe(3);

    // The stable name is the connection's: claimed for it, and no ingestion may name it.
    const [owner] = await h.sql`
      select tenant_id, connection_id, ingestion_id from autoloader.owned_tables
      where schema_name = ${cache} and table_name = 'basic__users'`;
    expect(owner).toEqual({ tenant_id: h.tenantId, connection_id: id, ingestion_id: null });
    const ingestion = await h.api<ErrorBody>('POST', '/api/v1/ingestions', {
      name: `into-cache-${randomUUID().slice(0, 6)}`,
      connection_id: await h.createS3Connection(),
      source: { bucket: 'nothing-here', format: 'jsonl' },
      destination: `${cache}.basic__users`,
    });
    expect(ingestion.status).toBe(409);
    expect(ingestion.body.error_code).toBe('DESTINATION_UNAVAILABLE');

    // Audited, like other operations (no confirm needed: nothing is lost before the grace period ends).
    const audited = await h.sql<{ action: string; impact: { connection_id: string; table_name: string } }[]>`
      select action, impact from autoloader.audit_events
      where tenant_id = ${h.tenantId} and action = 'table_data_refresh' and impact->>'connection_id' = ${id}`;
    expect(audited).toHaveLength(2);
    expect(audited[0]!.impact).toMatchObject({ schema_name: 'basic', table_name: 'users' });
  });

  it('drops the previous version once its grace period has passed', async () => {
    const id = await connectionOver('grace');
    expect((await refreshTable(h.api, id, 'grace', 't')).status).toBe(200);
    await fill('grace.t', 5, 6);
    const second = await refreshTable(h.api, id, 'grace', 't');
    expect(second.body.rows_synced).toBe(6);

    const all = await h.api<{ items: Deletion[] }>('GET', '/api/v1/pending-deletions?include_done=true');
    const old = all.body.items.filter((d) => d.table_name.startsWith(`${cache}.grace__t__v`));
    expect(old).toHaveLength(1);
    // The durable timer's workflow: done once the table is dropped.
    await h.client.workflow.getHandle(workflowIds.deletion(old[0]!.id)).result();
    expect(await tableExists(old[0]!.table_name.slice(cache.length + 1))).toBe(false);
    const after = await h.api<{ items: Deletion[] }>('GET', '/api/v1/pending-deletions?include_done=true');
    expect(after.body.items.find((d) => d.id === old[0]!.id)?.executed_at).toEqual(expect.any(String));
    expect(await countAt('grace__t')).toBe(6);
  });

  it('keeps readers of the stable name on complete old or complete new rows, never an error', async () => {
    const id = await connectionOver('reader');
    expect((await refreshTable(h.api, id, 'reader', 'big')).body.rows_synced).toBe(20_000);
    await fill('reader.big', 20_001, 50_000);

    let done = false;
    const counts: number[] = [];
    const readerErrors: unknown[] = [];
    const reader = (async () => {
      while (!done) {
        try {
          counts.push(await countAt('reader__big'));
        } catch (err) {
          readerErrors.push(err);
        }
      }
    })();
    const refreshed = await refreshTable(h.api, id, 'reader', 'big');
    done = true;
    await reader;
    expect(refreshed.body.rows_synced).toBe(50_000);
    expect(readerErrors).toEqual([]);
    // The first read went out before the refresh began: the loop did read during it.
    expect(counts[0]).toBe(20_000);
    expect(new Set(counts.filter((n) => n !== 20_000 && n !== 50_000))).toEqual(new Set());
    expect(await countAt('reader__big')).toBe(50_000);
  });

  it('is 404 for a table not in the catalog and for an unknown connection', async () => {
    const id = await connectionOver('basic');
    const table = await refreshTable(h.api, id, 'basic', 'nope');
    expect(table.status).toBe(404);
    expect(table.body.error_code).toBe('TABLE_NOT_FOUND');
    const conn = await refreshTable(h.api, 'conn_nope', 'basic', 'users');
    expect(conn.status).toBe(404);
    expect(conn.body.error_code).toBe('CONNECTION_NOT_FOUND');
  });

  it('is 409 DESTINATION_UNAVAILABLE when the stable name is a table the service did not create', async () => {
    const id = await connectionOver('taken');
    await h.sql.unsafe(`create schema if not exists ${cache}; create table ${cache}.taken__t (mine text)`);
    const res = await refreshTable(h.api, id, 'taken', 't');
    expect(res.status).toBe(409);
    expect(res.body.error_code).toBe('DESTINATION_UNAVAILABLE');
    // Left as it was, and nothing of the copy behind.
    const left = await h.sql`
      select relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = ${cache} and c.relname like 'taken%'`;
    expect(left.map((r) => r.relname)).toEqual(['taken__t']);
  });

  it('answers 202 with an operation while a refresh goes on, 409 RUN_IN_PROGRESS to a second one of the table, and stops when cancelled', async () => {
    const id = await connectionOver('locked');
    let operationId = '';
    const workflowId = workflowIds.tableDataRefresh(id, 'locked', 't');
    // The remote table locked: the copy waits for it, so the refresh is certainly still running.
    const lock = await lockRemote('locked.t');
    try {
      const quick = inProcessClient(h.makeApp({ refresh: { responseWaitMs: 0 } }), h.token);
      const first = await refreshTable(quick, id, 'locked', 't');
      expect(first.status).toBe(202);
      expect(first.body).toEqual({
        status: 'running',
        operation_id: expect.stringMatching(/^op_/),
        operation_url: `/api/v1/operations/${first.body.operation_id}`,
        workflow_id: workflowId,
      });
      operationId = first.body.operation_id;
      const running = await h.api<Operation>('GET', `/api/v1/operations/${operationId}`);
      expect(running.status).toBe(200);
      expect(running.body).toMatchObject({
        id: operationId,
        connection_id: id,
        ingestion_id: null,
        type: 'table_data_refresh',
        status: 'running',
        result: null,
        finished_at: null,
      });

      const second = await refreshTable(h.api, id, 'locked', 't');
      expect(second.status).toBe(409);
      expect(second.body).toMatchObject({ error_code: 'RUN_IN_PROGRESS', current_run_id: workflowId });
    } finally {
      await lock.release();
    }
    const result = await h.client.workflow.getHandle(workflowId).result();
    expect(result).toMatchObject({ connection_id: id, rows_synced: 3 });
    expect(await countAt('locked__t')).toBe(3);
    // The workflow's last activity finished the operation before the workflow ended.
    const done = await h.api<Operation>('GET', `/api/v1/operations/${operationId}`);
    expect(done.body).toMatchObject({ status: 'success', error: null, result });
    expect(done.body.finished_at).not.toBeNull();
    const [audit] = await h.sql`
      select action, result from autoloader.audit_events where operation_id = ${operationId}`;
    expect(audit).toEqual({ action: 'table_data_refresh', result: 'success' });
    // Tenant-scoped: another tenant's token gets the 404 of a missing operation.
    const other = await otherTenantApi();
    const hidden = await other<ErrorBody>('GET', `/api/v1/operations/${operationId}`);
    expect(hidden.status).toBe(404);
    expect(hidden.body.error_code).toBe('OPERATION_NOT_FOUND');

    // Cancelled while the copy waits for the remote lock: it stops without waiting for it, and
    // leaves the cached table as it was, with no new version beside it.
    const relock = await lockRemote('locked.t');
    try {
      const quick = inProcessClient(h.makeApp({ refresh: { responseWaitMs: 0 } }), h.token);
      const again = await refreshTable(quick, id, 'locked', 't');
      expect(again.status).toBe(202);
      const cancelled = await h.api<Operation>(
        'POST',
        `/api/v1/operations/${again.body.operation_id}/cancel`,
      );
      expect(cancelled.body).toMatchObject({ status: 'cancelled', result: null });
      const handle = h.client.workflow.getHandle(workflowId);
      await expect(handle.result()).rejects.toThrow();
      expect((await handle.describe()).status.name).toBe('CANCELLED');
      const versions = await h.sql`
        select relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = ${cache} and c.relname like 'locked\\_\\_t\\_\\_v%'`;
      expect(versions.map((r) => r.relname)).toEqual([]);
      expect(await countAt('locked__t')).toBe(3);
    } finally {
      await relock.release();
    }
  });
});

describe('deleting a database connection', () => {
  it('renames its cached tables aside, queues them for deletion and frees their names', async () => {
    const id = await connectionOver('gone');
    expect((await refreshTable(h.api, id, 'gone', 't')).status).toBe(200);
    const before = await countAt('gone__t');
    expect((await h.api('DELETE', `/api/v1/connections/${id}`)).status).toBe(204);
    expect(await tableExists('gone__t')).toBe(false);
    const owned = await h.sql`
      select 1 from autoloader.owned_tables where schema_name = ${cache} and table_name = 'gone__t'`;
    expect(owned).toEqual([]);
    const all = await h.api<{ items: Deletion[] }>('GET', '/api/v1/pending-deletions?include_done=true');
    const retired = all.body.items.filter(
      (d) => d.table_name.startsWith(`${cache}.gone__t__v`) && d.executed_at === null,
    );
    expect(retired).toHaveLength(1);
    expect(await countAt(retired[0]!.table_name.slice(cache.length + 1))).toBe(before);
    await h.client.workflow.getHandle(workflowIds.deletion(retired[0]!.id)).result();
    expect(await tableExists(retired[0]!.table_name.slice(cache.length + 1))).toBe(false);

    // A new connection of the tenant caches under the same name again.
    const again = await connectionOver('gone');
    expect((await refreshTable(h.api, again, 'gone', 't')).body.rows_synced).toBe(before);
  });
});

describe('a schema refresh that finds a remote table gone', () => {
  it('queues its cached table for deletion and leaves the other tables’ caches as they are', async () => {
    const id = await connectionOver('vanish');
    expect((await refreshTable(h.api, id, 'vanish', 'x')).status).toBe(200);
    expect((await refreshTable(h.api, id, 'vanish', 'y')).status).toBe(200);
    await remote`drop table vanish.x`;
    const res = await h.api<{ tables_removed: number }>('POST', '/api/v1/refresh', { connection_id: id });
    expect(res.body).toMatchObject({ tables_removed: 1 });
    expect(await tableExists('vanish__x')).toBe(false);
    expect(await countAt('vanish__y')).toBe(2);

    const all = await h.api<{ items: Deletion[] }>('GET', '/api/v1/pending-deletions?include_done=true');
    const retired = all.body.items.filter((d) => d.table_name.startsWith(`${cache}.vanish__x__v`));
    expect(retired).toHaveLength(1);
    await h.client.workflow.getHandle(workflowIds.deletion(retired[0]!.id)).result();
    expect(await tableExists(retired[0]!.table_name.slice(cache.length + 1))).toBe(false);
    const owned = await h.sql`
      select table_name from autoloader.owned_tables where connection_id = ${id} order by table_name`;
    expect(owned.map((o) => o.table_name)).toEqual(['vanish__y']);
  });
  it('completes when a start-up sweep armed the deletion first (a crash between the retirement and its timer)', async () => {
    const id = await connectionOver('swept');
    expect((await refreshTable(h.api, id, 'swept', 'x')).status).toBe(200);
    await remote`drop table swept.x`;
    // A worker whose discoverTables, once it has committed the retirement, arms the deletion's timer
    // the way another worker's start-up sweep does (same workflow id) before the workflow can start it.
    const config = loadConfig();
    const real = createActivities(
      activityDepsFromConfig({ ...config, refresh: { ...config.refresh, swapGraceSeconds: 1 } }, h.sql),
    );
    const swept: string[] = [];
    const taskQueue = `swept-${randomUUID()}`;
    const connection = await connectWorker(config.temporal, inject('temporalAddress'));
    const worker = await Worker.create({
      connection,
      namespace: config.temporal.namespace,
      taskQueue,
      workflowBundle: { codePath: inject('workflowBundlePath') },
      activities: {
        ...real,
        discoverTables: async (input: Parameters<typeof real.discoverTables>[0]) => {
          const outcome = await real.discoverTables(input);
          for (const r of (outcome.ok && outcome.retired) || []) {
            await h.client.workflow.start(pendingDeletionWorkflow, {
              workflowId: workflowIds.deletion(r.deletionId),
              taskQueue: h.taskQueue,
              args: [{ deletionId: r.deletionId, dueAt: r.dueAt }],
            });
            swept.push(r.deletionId);
          }
          return outcome;
        },
      },
    });
    try {
      const api = inProcessClient(h.makeApp({ taskQueue }), h.token);
      const res = await worker.runUntil(
        api<{ tables_removed: number }>('POST', '/api/v1/refresh', { connection_id: id }),
      );
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ tables_removed: 1 });
    } finally {
      await connection.close();
    }
    expect(swept).toHaveLength(1);
    // The sweep's timer is the one: it runs to the end and drops the table set aside.
    await h.client.workflow.getHandle(workflowIds.deletion(swept[0]!)).result();
    const [row] = await h.sql<{ table: string; done: boolean }[]>`
      select table_name as table, executed_at is not null as done
      from autoloader.pending_deletions where id = ${swept[0]!}`;
    expect(row).toMatchObject({ done: true });
    expect(await tableExists(row!.table)).toBe(false);
  });
});

describe('connection data refresh (seed 004)', () => {
  it('refreshes every table of the connection, at most 4 at once, in child workflows that overlap', async () => {
    const id = await connectionOver('five');
    const res = await h.api<ConnectionResult>('POST', '/api/v1/refresh', { connection_id: id, data: true });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      connection_id: id,
      tables_refreshed: 5,
      tables_failed: 0,
      total_rows: 10 + 20 + 30 + 40 + 50,
      duration_ms: expect.any(Number),
      errors: [],
    });
    for (let i = 1; i <= 5; i++) {
      expect(await countAt(`five__t${i}`)).toBe(i * 10);
      expect((await catalogEntry(id, 'five', `t${i}`)).cached_version).toMatch(/^five__t\d__v[0-9a-f]{8}$/);
    }

    // Parallelism, as Temporal recorded it: each table's child workflow, its start and close.
    const spans = await Promise.all(
      [1, 2, 3, 4, 5].map(async (i) => {
        const d = await h.client.workflow
          .getHandle(workflowIds.tableDataRefresh(id, 'five', `t${i}`))
          .describe();
        expect(d.status.name).toBe('COMPLETED');
        expect(d.parentExecution?.workflowId).toBe(workflowIds.connectionDataRefresh(id));
        return { start: d.startTime.getTime(), close: d.closeTime!.getTime() };
      }),
    );
    const overlapping = (a: (typeof spans)[0], b: (typeof spans)[0]) =>
      a.start < b.close && b.start < a.close;
    const pairs = spans.flatMap((a, i) => spans.slice(i + 1).filter((b) => overlapping(a, b)));
    expect(pairs.length).toBeGreaterThan(0);
    // Never more than 4 open at once: at each start, count the children open then.
    for (const s of spans) {
      const open = spans.filter((o) => o.start <= s.start && s.start < o.close).length;
      expect(open).toBeLessThanOrEqual(4);
    }
  });

  it('records one table’s failure and carries on with the others', async () => {
    const id = await connectionOver('partial');
    // Gone from the remote after the schema refresh: the catalog still lists it.
    await remote`drop table partial.b`;
    const res = await h.api<ConnectionResult>('POST', '/api/v1/refresh', { connection_id: id, data: true });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ tables_refreshed: 2, tables_failed: 1, total_rows: 14 });
    expect(res.body.errors).toEqual([
      { schema_name: 'partial', table_name: 'b', error: expect.stringMatching(/does not exist/) },
    ]);
    expect(await countAt('partial__a')).toBe(7);
    expect(await countAt('partial__c')).toBe(7);
    expect(await tableExists('partial__b')).toBe(false);
    expect((await catalogEntry(id, 'partial', 'b')).cached_version).toBeNull();
    // Nothing of the failed copy is left behind.
    const leftovers = await h.sql`
      select relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = ${cache} and c.relname like 'partial\\_\\_b%'`;
    expect(leftovers).toEqual([]);

    // The one table on its own: 404, the remote table is gone.
    const alone = await refreshTable(h.api, id, 'partial', 'b');
    expect(alone.status).toBe(404);
    expect(alone.body.error_code).toBe('TABLE_NOT_FOUND');
    expect(alone.body.detail).toMatch(/does not exist/);

    // Both recorded as operations of the connection: the first ended partial_failure with the
    // seed's body as its result, the second failed saying why.
    const ops = await h.sql<{ id: string }[]>`
      select id from autoloader.operations where connection_id = ${id} order by created_at`;
    expect(ops).toHaveLength(2);
    const [whole, one] = await Promise.all(
      ops.map((o) => h.api<Operation>('GET', `/api/v1/operations/${o.id}`).then((r) => r.body)),
    );
    expect(whole).toMatchObject({
      type: 'connection_data_refresh',
      status: 'partial_failure',
      result: res.body,
    });
    expect(one).toMatchObject({ type: 'table_data_refresh', status: 'failed', result: null });
    expect(one!.error).toMatch(/does not exist/);
  });
});
