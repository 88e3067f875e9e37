import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { inProcessClient } from '../../src/api/in-process.js';
import { createToken, ensureTenant } from '../../src/auth/tokens.js';
import {
  type Harness,
  jsonLines,
  minioConnectionConfig,
  startHarness,
  storeMinioCredentials,
} from '../helpers/harness.js';

/** A destination table belongs to the ingestion that created it, and to its tenant. */
let h: Harness;
let other: ReturnType<typeof inProcessClient>;
let otherConnection: string;

beforeAll(async () => {
  h = await startHarness();
  const tenant = `tenant_${randomUUID().slice(0, 8)}`;
  await ensureTenant(h.db, tenant, 'tenant B');
  const { token } = await createToken(h.db, {
    tenantId: tenant,
    name: 'b',
    subject: 'mallory',
    permissions: [
      'connection:read',
      'connection:write',
      'ingestion:read',
      'ingestion:write',
      'ingestion:run',
      'ingestion:refresh',
    ],
  });
  other = inProcessClient(h.app, token);
  // Tenant B stores its own copy of the MinIO credentials and has its own connection.
  await storeMinioCredentials(other, inject('s3'));
  const conn = await other<{ id: string }>('POST', '/api/v1/connections', {
    name: 'b-minio',
    kind: 's3',
    config: minioConnectionConfig(inject('s3')),
  });
  otherConnection = conn.body.id;
});
afterAll(async () => {
  await h?.close();
});

const ingestionBody = (connectionId: string, destination: string, bucket = 'whatever') => ({
  name: `i-${randomUUID().slice(0, 8)}`,
  connection_id: connectionId,
  source: { bucket, format: 'jsonl' },
  destination,
});

describe('table ownership', () => {
  it('refuses a takeover: after A deletes its ingestion, B cannot load, drop or clear A’s table', async () => {
    const { id, table } = await h.createIngestion({ 'a.jsonl': jsonLines(0, 10) }, {}, 'own');
    expect(await h.runAndWait(id)).toMatchObject({ status: 'SUCCESS', records_written: 10 });
    expect((await h.api('DELETE', `/api/v1/ingestions/${id}`)).status).toBe(204);
    // The table is kept, and still A's.
    const [kept] = await h.sql.unsafe(`select count(*)::int as n from raw.${table}`);
    expect(kept!.n).toBe(10);

    const takeover = await other<{ error_code: string }>(
      'POST',
      '/api/v1/ingestions',
      ingestionBody(otherConnection, `raw.${table}`),
    );
    expect(takeover.status).toBe(409);
    expect(takeover.body.error_code).toBe('DESTINATION_UNAVAILABLE');

    // A itself may load its table again with a new ingestion.
    const again = await h.api(
      'POST',
      '/api/v1/ingestions',
      ingestionBody(await h.createS3Connection(), `raw.${table}`),
    );
    expect(again.status).toBe(201);
  });

  it('answers the same 409 for another tenant’s table, an existing table the service did not create, another ingestion’s table and a reserved name', async () => {
    const { table } = await h.createIngestion({}, {}, 'own2');
    await h.sql.unsafe('create table if not exists public.not_ours (id int)');
    const answers = [];
    for (const destination of [
      `raw.${table}`,
      'public.not_ours',
      `raw.${table}__old_0a1b2c3d`,
      'raw._al_op_shadow',
    ]) {
      const res = await other<Record<string, unknown>>(
        'POST',
        '/api/v1/ingestions',
        ingestionBody(otherConnection, destination),
      );
      answers.push([res.status, res.body]);
    }
    // A's own second ingestion on a table its first one writes.
    const mine = await h.api<Record<string, unknown>>(
      'POST',
      '/api/v1/ingestions',
      ingestionBody(await h.createS3Connection(), `raw.${table}`),
    );
    answers.push([mine.status, mine.body]);
    for (const a of answers) expect(a).toEqual(answers[0]);
    expect(answers[0]![0]).toBe(409);
    expect(answers[0]![1]).toMatchObject({ error_code: 'DESTINATION_UNAVAILABLE' });
  });

  it('lets an admin adopt an existing table, audited; without admin the flag is refused', async () => {
    await h.sql.unsafe('create table if not exists public.legacy_orders (id bigint)');
    const refused = await other<{ error_code: string }>('POST', '/api/v1/ingestions', {
      ...ingestionBody(otherConnection, 'public.legacy_orders'),
      adopt_existing_table: true,
    });
    expect(refused.status).toBe(403);
    const adopted = await h.api<{ id: string }>('POST', '/api/v1/ingestions', {
      ...ingestionBody(await h.createS3Connection(), 'public.legacy_orders'),
      adopt_existing_table: true,
    });
    expect(adopted.status).toBe(201);
    const events = await h.api<{ items: { action: string }[] }>(
      'GET',
      `/api/v1/audit-events?ingestion_id=${adopted.body.id}`,
    );
    expect(events.body.items.map((e) => e.action)).toContain('adopt_table');
  });

  it('a tenant schema prefix keeps tenants out of each other’s schemas', async () => {
    await h.sql`update autoloader.tenants set policy = policy || '{"schema_prefix": "raw_acme"}' where id = ${h.tenantId}`;
    try {
      const conn = await h.createS3Connection();
      const outside = await h.api<{ error_code: string }>(
        'POST',
        '/api/v1/ingestions',
        ingestionBody(conn, 'raw.acme_x'),
      );
      expect(outside.body.error_code).toBe('DESTINATION_UNAVAILABLE');
      const inside = await h.api('POST', '/api/v1/ingestions', ingestionBody(conn, 'raw_acme_sales.x'));
      expect(inside.status).toBe(201);
    } finally {
      await h.sql`update autoloader.tenants set policy = policy - 'schema_prefix' where id = ${h.tenantId}`;
    }
  });

  it('deleting an ingestion deletes its schedule, and with drop_table and confirm its table too', async () => {
    const { id, table } = await h.createIngestion({ 'a.jsonl': jsonLines(0, 2) }, {}, 'own5');
    await h.runAndWait(id);
    expect((await h.api('PUT', `/api/v1/ingestions/${id}/schedule`, { cron: '0 3 * * *' })).status).toBe(200);
    expect((await h.api('DELETE', `/api/v1/ingestions/${id}?drop_table=true`)).status).toBe(400);
    expect((await h.api('DELETE', `/api/v1/ingestions/${id}?drop_table=true&confirm=true`)).status).toBe(204);
    const [gone] = await h.sql`select to_regclass(${`raw.${table}`}) as t`;
    expect(gone!.t).toBeNull();
    const schedules = [];
    for await (const s of h.client.schedule.list()) schedules.push(s.scheduleId);
    expect(schedules).not.toContain(`ingestion-${id}`);
    // The name is free again, for anyone.
    expect(
      (await other('POST', '/api/v1/ingestions', ingestionBody(otherConnection, `raw.${table}`))).status,
    ).toBe(201);
  });
});
