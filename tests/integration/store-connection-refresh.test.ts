import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inProcessClient } from '../../src/api/in-process.js';
import { createToken } from '../../src/auth/tokens.js';
import { type Harness, jsonLines, startHarness } from '../helpers/harness.js';

/**
 * Seed 004's `POST /refresh` on object-store connections (issue 8): the connection's tables are
 * its ingestions' destination tables; a schema refresh counts them, a data refresh is a swap full
 * refresh of each ingestion. Real Temporal, Postgres and MinIO.
 */
let h: Harness;
beforeAll(async () => {
  // A long grace period: the old versions stay listed in /pending-deletions for the assertions.
  h = await startHarness({ refresh: { swapGraceSeconds: 3600 } });
});
afterAll(async () => {
  await h?.close();
});

type ErrorBody = { error_code: string; detail: string; current_run_id?: string | null };
type SchemaResult = {
  connections_refreshed: number;
  tables_discovered: number;
  tables_added: number;
  tables_removed: number;
  tables_modified: number;
};
type ConnectionResult = {
  connection_id: string;
  tables_refreshed: number;
  tables_failed: number;
  total_rows: number;
  duration_ms: number;
  errors: { schema_name: string; table_name: string; error: string }[];
};
type TableResult = {
  connection_id: string;
  schema_name: string;
  table_name: string;
  rows_synced: number;
  duration_ms: number;
};
type Running = { status: 'running'; operation_id: string; workflow_id: string };
type Operation = { id: string; type: string; status: string; result: Record<string, unknown> | null };

const rowCount = async (table: string) => {
  const [c] = await h.sql.unsafe<{ n: number }[]>(`select count(*)::int as n from raw.${table}`);
  return c!.n;
};

/** An ingestion on `connectionId` over a bucket of its own, loaded once: `files` files of `rows` rows. */
async function loadedIngestion(connectionId: string, files: number, rows: number) {
  const bucket = await h.createBucket();
  for (let i = 0; i < files; i++) await h.putObject(bucket, `f${i}.jsonl`, jsonLines(i * rows, rows));
  const table = `sc_${bucket.replaceAll('-', '_')}`.slice(0, 60);
  const res = await h.api<{ id: string }>('POST', '/api/v1/ingestions', {
    name: table,
    connection_id: connectionId,
    source: { bucket, format: 'jsonl' },
    destination: `raw.${table}`,
  });
  expect(res.status).toBe(201);
  expect(await h.runAndWait(res.body.id)).toMatchObject({ status: 'SUCCESS', files_processed: files });
  return { id: res.body.id, bucket, table };
}

/** The seed's body: at once (200), or from the workflow when the answer was 202. */
async function settled<T>(res: { status: number; body: T | Running }): Promise<T> {
  if (res.status === 200) return res.body as T;
  expect(res.status).toBe(202);
  const running = res.body as Running;
  return h.client.workflow.getHandle(running.workflow_id).result() as Promise<T>;
}

describe('POST /refresh on an object-store connection', () => {
  it('schema refresh: the ingestions’ tables discovered, then added, modified and removed ones counted', async () => {
    const conn = await h.createS3Connection();
    const a = await loadedIngestion(conn, 1, 5);
    const b = await loadedIngestion(conn, 1, 5);

    const first = await h.api<SchemaResult>('POST', '/api/v1/refresh', { connection_id: conn });
    expect(first.status).toBe(200);
    expect(first.body).toEqual({
      connections_refreshed: 1,
      tables_discovered: 2,
      tables_added: 2,
      tables_removed: 0,
      tables_modified: 0,
    });
    const listed = await h.api<{
      items: { schema_name: string; table_name: string; columns: { name: string }[] }[];
    }>('GET', `/api/v1/connections/${conn}/tables`);
    expect(listed.body.items.map((t) => `${t.schema_name}.${t.table_name}`)).toEqual(
      [a.table, b.table].sort().map((t) => `raw.${t}`),
    );
    expect(listed.body.items[0]!.columns.map((c) => c.name)).toEqual(
      expect.arrayContaining(['id', 'user', 'amount']),
    );

    // A new field in a's files is a new schema version: a modified table. A third ingestion is
    // added; b deleted is removed.
    await h.putObject(
      a.bucket,
      'wider.jsonl',
      `${JSON.stringify({ id: 100, user: 'u', amount: 1.5, ts: '2025-01-01T00:00:00Z', tags: [], extra: 1.5 })}\n`,
    );
    expect(await h.runAndWait(a.id)).toMatchObject({ status: 'SUCCESS', files_processed: 1 });
    const c = await loadedIngestion(conn, 1, 3);
    expect((await h.api('DELETE', `/api/v1/ingestions/${b.id}`)).status).toBe(204);

    const second = await h.api<SchemaResult>('POST', '/api/v1/refresh', { connection_id: conn });
    expect(second.body).toEqual({
      connections_refreshed: 1,
      tables_discovered: 2,
      tables_added: 1,
      tables_removed: 1,
      tables_modified: 1,
    });
    const now = await h.api<{ items: { table_name: string }[] }>('GET', `/api/v1/connections/${conn}/tables`);
    expect(now.body.items.map((t) => t.table_name)).toEqual([a.table, c.table].sort());
    // Nothing changed since: nothing counted.
    const third = await h.api<SchemaResult>('POST', '/api/v1/refresh', { connection_id: conn });
    expect(third.body).toMatchObject({
      tables_discovered: 2,
      tables_added: 0,
      tables_removed: 0,
      tables_modified: 0,
    });
  });

  it('data refresh: a swap full refresh of each of its two ingestions, counted once against the rate limit', async () => {
    const conn = await h.createS3Connection();
    const a = await loadedIngestion(conn, 2, 10);
    const b = await loadedIngestion(conn, 3, 7);
    // Rows no file holds: a full refresh rebuilds each table from its files alone.
    for (const t of [a.table, b.table])
      await h.sql.unsafe(
        `insert into raw.${t} (id, _source_file, _run_id) values (999999, 'stray', 'stray')`,
      );

    const unconfirmed = await h.api<ErrorBody>('POST', '/api/v1/refresh', {
      connection_id: conn,
      data: true,
    });
    expect(unconfirmed.status).toBe(400);
    expect(unconfirmed.body.error_code).toBe('CONFIRMATION_REQUIRED');
    const { token } = await createToken(h.db, {
      tenantId: h.tenantId,
      name: 'refresh-connections-only',
      subject: 'cr@example.com',
      permissions: ['connection:read', 'connection:refresh'],
    });
    const limited = await inProcessClient(h.app, token)<ErrorBody>('POST', '/api/v1/refresh', {
      connection_id: conn,
      data: true,
      confirm: true,
    });
    expect(limited.status).toBe(403);
    expect(limited.body.error_code).toBe('INSUFFICIENT_PERMISSIONS');

    const res = await h.api<ConnectionResult | Running>('POST', '/api/v1/refresh', {
      connection_id: conn,
      data: true,
      confirm: true,
    });
    const body = await settled<ConnectionResult>(res);
    expect(body).toMatchObject({
      connection_id: conn,
      tables_refreshed: 2,
      tables_failed: 0,
      total_rows: 20 + 21,
      errors: [],
    });
    expect(await rowCount(a.table)).toBe(20);
    expect(await rowCount(b.table)).toBe(21);

    // Each member is its ingestion's own swap full refresh; the connection's operation holds the body.
    const members = await h.sql<{ id: string; ingestion_id: string; status: string; strategy: string }[]>`
      select id, ingestion_id, status, strategy from autoloader.operations
      where ingestion_id in ${h.sql([a.id, b.id])} and type = 'full_refresh' order by ingestion_id`;
    expect(members.map((m) => [m.ingestion_id, m.status, m.strategy])).toEqual(
      [a.id, b.id].sort().map((id) => [id, 'success', 'swap']),
    );
    const [parent] = await h.sql<{ id: string }[]>`
      select id from autoloader.operations where connection_id = ${conn} and type = 'connection_data_refresh'`;
    const op = await h.api<Operation>('GET', `/api/v1/operations/${parent!.id}`);
    expect(op.body).toMatchObject({ status: 'success', result: { tables_refreshed: 2, total_rows: 41 } });
    const audited = await h.sql<{ n: number }[]>`
      select count(distinct impact->>'batch_id')::int as n from autoloader.audit_events
      where ingestion_id in ${h.sql([a.id, b.id])} and action = 'full_refresh' and not dry_run`;
    expect(audited[0]!.n).toBe(1);
    // The versions they replaced wait out the grace period.
    const pending = await h.api<{ items: { table_name: string; executed_at: string | null }[] }>(
      'GET',
      '/api/v1/pending-deletions',
    );
    const waiting = pending.body.items.filter((d) => d.executed_at === null).map((d) => d.table_name);
    for (const t of [a.table, b.table]) expect(waiting.some((w) => w.includes(t))).toBe(true);
  });

  it('one table: the ingestion loading it refreshed; an unknown table 404; a busy one reported, the others refreshed', async () => {
    const conn = await h.createS3Connection();
    const a = await loadedIngestion(conn, 2, 4);

    const one = await h.api<TableResult | Running>('POST', '/api/v1/refresh', {
      connection_id: conn,
      schema_name: 'raw',
      table_name: a.table,
      data: true,
      confirm: true,
    });
    expect(await settled<TableResult>(one)).toMatchObject({
      connection_id: conn,
      schema_name: 'raw',
      table_name: a.table,
      rows_synced: 8,
    });
    const unknown = await h.api<ErrorBody>('POST', '/api/v1/refresh', {
      connection_id: conn,
      schema_name: 'raw',
      table_name: 'no_such_table',
      data: true,
      confirm: true,
    });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error_code).toBe('TABLE_NOT_FOUND');

    // A second ingestion on the connection whose run is held mid-load by a lock on its table.
    const table = `scbusy_${randomUUID().replaceAll('-', '').slice(0, 10)}`;
    const lock = await h.holdTableLock(table);
    try {
      const bucket = await h.createBucket();
      await h.putObject(bucket, 'f.jsonl', jsonLines(0, 10));
      const busy = await h.api<{ id: string }>('POST', '/api/v1/ingestions', {
        name: table,
        connection_id: conn,
        source: { bucket, format: 'jsonl' },
        destination: `raw.${table}`,
      });
      expect(busy.status).toBe(201);
      const run = await h.api<{ id: string }>('POST', `/api/v1/ingestions/${busy.body.id}/run`);
      expect(run.status).toBe(202);

      const alone = await h.api<ErrorBody>('POST', '/api/v1/refresh', {
        connection_id: conn,
        schema_name: 'raw',
        table_name: table,
        data: true,
        confirm: true,
      });
      expect(alone.status).toBe(409);
      expect(alone.body).toMatchObject({ error_code: 'RUN_IN_PROGRESS', current_run_id: run.body.id });

      const all = await settled<ConnectionResult>(
        await h.api<ConnectionResult | Running>('POST', '/api/v1/refresh', {
          connection_id: conn,
          data: true,
          confirm: true,
        }),
      );
      expect(all).toMatchObject({ tables_refreshed: 1, tables_failed: 1, total_rows: 8 });
      expect(all.errors).toEqual([
        { schema_name: 'raw', table_name: table, error: expect.stringContaining('RUN_IN_PROGRESS') },
      ]);
      // The busy member left no operation behind; its run goes on untouched.
      const ops = await h.sql`
        select 1 from autoloader.operations where ingestion_id = ${busy.body.id} and type = 'full_refresh'`;
      expect(ops).toHaveLength(0);
      const [parent] = await h.sql<{ status: string }[]>`
        select status from autoloader.operations where connection_id = ${conn} and type = 'connection_data_refresh'`;
      expect(parent!.status).toBe('partial_failure');
    } finally {
      await lock.release();
    }
    await h.waitForIngestionIdle(
      (
        await h.sql<{ id: string }[]>`select id from autoloader.ingestions where destination_table = ${table}`
      )[0]!.id,
    );
  });
});
