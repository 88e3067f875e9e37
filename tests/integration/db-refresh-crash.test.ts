/**
 * Seed 004's connection data refresh survives its worker being SIGKILLed: the worker process dies
 * while four of five tables are refreshed and the fifth is copying; another worker finishes the
 * refresh. Every table ends refreshed exactly once (one swap each, so one previous version queued
 * each) and no version is orphaned (every `__v…` table of the cache schema is queued for deletion).
 * The remote is a second database in the test cluster, as in db-data-refresh.test.ts.
 */
import { randomUUID } from 'node:crypto';
import type postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { waitFor } from '../../src/dev/service.js';
import { workflowIds } from '../../src/temporal/ids.js';
import { type Harness, startHarness } from '../helpers/harness.js';
import { holdLock } from '../helpers/locks.js';
import { createRemoteDatabase } from '../helpers/remote-db.js';
import { spawnWorkerProcess, type WorkerProcess } from '../helpers/spawn-worker.js';

let h: Harness;
let remote: postgres.Sql;
let remoteDb: string;
let remoteDatabase: Awaited<ReturnType<typeof createRemoteDatabase>> | undefined;
const url = new URL(inject('databaseUrl'));
const cache = `cache_${randomUUID().replaceAll('-', '').slice(0, 10)}`;
const workers: WorkerProcess[] = [];
const TABLES = ['t1', 't2', 't3', 't4', 't5'];
/** The table whose copy is in flight when the worker dies: its remote table is locked. */
const HELD = 't3';

type Catalog = { items: { schema_name: string; table_name: string; cached_version: string | null }[] };
type Operation = { status: string; result: Record<string, unknown> | null };

const spawn = async (taskQueue: string) => {
  const w = await spawnWorkerProcess({
    databaseUrl: h.databaseUrl,
    temporalAddress: inject('temporalAddress'),
    taskQueue,
    workflowBundlePath: inject('workflowBundlePath'),
  });
  workers.push(w);
  return w;
};

beforeAll(async () => {
  // A long grace period: no previous version is dropped while the test counts them.
  h = await startHarness({ refresh: { swapGraceSeconds: 3600, responseWaitMs: 60_000 } });
  remoteDatabase = await createRemoteDatabase(h, { max: 2 });
  remoteDb = remoteDatabase.name;
  remote = remoteDatabase.sql;
  await remote.unsafe('create schema crash');
  for (const [i, t] of TABLES.entries()) {
    await remote.unsafe(`create table crash.${t} (id integer, label text)`);
    await remote.unsafe(
      `insert into crash.${t} select g, 'row ' || g from generate_series(1, ${(i + 1) * 100}) g`,
    );
  }
  const secret = await h.api('PUT', '/api/v1/secrets/remote-pg-password', {
    value: decodeURIComponent(url.password),
  });
  expect(secret.status).toBe(200);
});

afterAll(async () => {
  for (const w of workers) await w.kill();
  await remoteDatabase?.drop();
  await h?.close();
});

async function versions(connectionId: string): Promise<Map<string, string | null>> {
  const res = await h.api<Catalog>('GET', `/api/v1/connections/${connectionId}/tables`);
  return new Map(res.body.items.map((t) => [t.table_name, t.cached_version]));
}

describe('a worker SIGKILLed during a connection data refresh of 5 tables', () => {
  it('is finished by another worker: every table refreshed exactly once, no version orphaned', async () => {
    const created = await h.api<{ id: string }>('POST', '/api/v1/connections', {
      name: `pg-${randomUUID().slice(0, 8)}`,
      kind: 'postgres',
      config: {
        host: '127.0.0.1',
        port: Number(url.port),
        database: remoteDb,
        user: decodeURIComponent(url.username),
        password: { secret: 'remote-pg-password' },
        ssl_mode: 'disable',
        schemas: ['crash'],
        cache_schema: cache,
      },
    });
    expect(created.status).toBe(201);
    const id = created.body.id;
    expect((await h.api('POST', '/api/v1/refresh', { connection_id: id })).status).toBe(200);
    // A first refresh (on the harness's worker): each table has a version that the next replaces.
    const first = await h.api<{ tables_refreshed: number }>('POST', '/api/v1/refresh', {
      connection_id: id,
      data: true,
    });
    expect(first.body.tables_refreshed).toBe(5);
    const before = await versions(id);
    const startedAt = new Date();

    // Workflows of this app go to a task queue only the child workers poll.
    const taskQueue = `db-crash-${randomUUID()}`;
    const quick = h.makeApp({ taskQueue, refresh: { responseWaitMs: 0 } });
    const lock = await holdLock(remote, `crash.${HELD}`);

    const firstWorker = await spawn(taskQueue);
    let second: WorkerProcess;
    let operationUrl: string;
    try {
      const res = await quick.request('/api/v1/refresh', {
        method: 'POST',
        headers: { authorization: `Bearer ${h.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ connection_id: id, data: true }),
      });
      expect(res.status).toBe(202);
      operationUrl = ((await res.json()) as { operation_url: string }).operation_url;

      // Mid-refresh: the other four tables swapped in (their versions recorded in the catalog),
      // the held table's copy waiting for the remote lock.
      await Promise.race([
        firstWorker.died,
        waitFor(
          'four tables refreshed and the fifth copying',
          async () => {
            const now = await versions(id);
            const done = TABLES.filter((t) => t !== HELD && now.get(t) !== before.get(t));
            const [waiting] = await remote<{ n: number }[]>`
              select count(*)::int as n from pg_locks
              where relation = ${`crash.${HELD}`}::regclass and not granted`;
            return done.length === 4 && waiting!.n >= 1 ? true : undefined;
          },
          { timeoutMs: 60_000, intervalMs: 100 },
        ),
      ]);
      expect((await versions(id)).get(HELD)).toBe(before.get(HELD));
      await firstWorker.kill();
      second = await spawn(taskQueue);
    } finally {
      await lock.release();
    }

    const handle = h.client.workflow.getHandle(workflowIds.connectionDataRefresh(id));
    const result = await Promise.race([handle.result(), second.died]);
    expect(result).toMatchObject({ tables_refreshed: 5, tables_failed: 0, total_rows: 1500, errors: [] });
    const op = await h.api<Operation>('GET', operationUrl);
    expect(op.body).toMatchObject({ status: 'success', result });

    // Every table: a new version, its rows all there.
    const after = await versions(id);
    for (const [i, t] of TABLES.entries()) {
      expect(after.get(t)).not.toBeNull();
      expect(after.get(t)).not.toBe(before.get(t));
      const [n] = await h.sql.unsafe(`select count(*)::int as n from ${cache}.crash__${t}`);
      expect(n).toEqual({ n: (i + 1) * 100 });
    }
    // Exactly one swap per table since the crashed refresh began: one previous version queued each.
    const queued = await h.sql<{ table_name: string }[]>`
      select table_name from autoloader.pending_deletions
      where schema_name = ${cache} and created_at >= ${startedAt} and executed_at is null`;
    expect(queued).toHaveLength(5);
    for (const t of TABLES)
      expect(queued.filter((q) => q.table_name.startsWith(`crash__${t}__v`))).toHaveLength(1);
    // No orphan: every versioned table of the cache schema is one queued for deletion.
    const versioned = await h.sql<{ relname: string }[]>`
      select relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = ${cache} and c.relkind = 'r' and c.relname like '%\\_\\_v%' order by relname`;
    const pending = await h.sql<{ table_name: string }[]>`
      select table_name from autoloader.pending_deletions
      where schema_name = ${cache} and executed_at is null order by table_name`;
    expect(versioned.map((r) => r.relname)).toEqual(pending.map((p) => p.table_name));
    // The live versions hold the stable names; the five previous ones wait out the grace period.
    expect(versioned).toHaveLength(5);
  });
});
