import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inProcessClient } from '../../src/api/in-process.js';
import { createToken, type Permission, permissions } from '../../src/auth/tokens.js';
import { type Harness, jsonLines, startHarness } from '../helpers/harness.js';

/**
 * Every route of the OpenAPI document declares one permission, and a token without it gets 403 —
 * walked from the served document, so a route added later without a permission fails here.
 */
let h: Harness;
let ingestionId: string;
beforeAll(async () => {
  h = await startHarness();
  ingestionId = (await h.createIngestion({ 'a.jsonl': jsonLines(0, 3) }, {}, 'perm')).id;
});
afterAll(async () => {
  await h?.close();
});

type Operation = { 'x-permission'?: string };

describe('route permissions', () => {
  it('every route declares a permission of the contract, and refuses a token without it with 403', async () => {
    const doc = (await (await h.app.request('/openapi.json')).json()) as {
      paths: Record<string, Record<string, Operation>>;
    };
    const routes = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.entries(ops).map(([method, op]) => ({
        path,
        method: method.toUpperCase(),
        permission: op['x-permission'],
      })),
    );
    expect(routes.length).toBeGreaterThan(30);
    const undeclared = routes.filter(
      (r) => !r.permission || !(permissions as readonly string[]).includes(r.permission),
    );
    expect(undeclared).toEqual([]);

    const tokens = new Map<string, string>();
    for (const p of permissions) {
      const others = permissions.filter((q) => q !== p) as Permission[];
      tokens.set(
        p,
        (
          await createToken(h.db, {
            tenantId: h.tenantId,
            name: `no-${p}`,
            subject: 'limited',
            permissions: others,
          })
        ).token,
      );
    }
    const before =
      await h.sql`select count(*)::int as n from autoloader.runs where ingestion_id = ${ingestionId}`;
    for (const r of routes) {
      const api = inProcessClient(h.app, tokens.get(r.permission!)!);
      const path = r.path.replace('{id}', ingestionId).replace('{name}', 'some-secret');
      const res = await api<{ error_code: string; required_permission: string }>(
        r.method,
        path,
        ['POST', 'PUT', 'PATCH'].includes(r.method) ? {} : undefined,
      );
      expect(res.status, `${r.method} ${r.path}`).toBe(403);
      expect(res.body, `${r.method} ${r.path}`).toMatchObject({
        error_code: 'INSUFFICIENT_PERMISSIONS',
        required_permission: r.permission,
      });
    }
    // And nothing happened on the way.
    const after =
      await h.sql`select count(*)::int as n from autoloader.runs where ingestion_id = ${ingestionId}`;
    expect(after[0]!.n).toBe(before[0]!.n);
  });

  it('a read-only token reads, and cannot create, run, delete or clear', async () => {
    const { token } = await createToken(h.db, {
      tenantId: h.tenantId,
      name: 'reader',
      subject: 'reader',
      permissions: ['ingestion:read', 'connection:read'],
    });
    const api = inProcessClient(h.app, token);
    expect((await api('GET', `/api/v1/ingestions/${ingestionId}`)).status).toBe(200);
    expect((await api('POST', `/api/v1/ingestions/${ingestionId}/run`)).status).toBe(403);
    expect((await api('DELETE', `/api/v1/ingestions/${ingestionId}`)).status).toBe(403);
    expect(
      (await api('DELETE', `/api/v1/ingestions/${ingestionId}/processed-files?confirm=true`)).status,
    ).toBe(403);
    expect(
      (await api('POST', '/api/v1/connections', { name: 'x', kind: 'local', config: { path: '/tmp' } }))
        .status,
    ).toBe(403);
  });

  it('clearing history is audited, like the other destructive operations', async () => {
    await h.runAndWait(ingestionId);
    const res = await h.api<{ files_cleared: number }>(
      'DELETE',
      `/api/v1/ingestions/${ingestionId}/processed-files?confirm=true`,
    );
    expect(res.status).toBe(200);
    const events = await h.api<{
      items: { action: string; subject: string; impact: { files_cleared: number } }[];
    }>('GET', `/api/v1/audit-events?ingestion_id=${ingestionId}`);
    expect(events.body.items[0]).toMatchObject({
      action: 'clear_processed_files',
      subject: 'tester@example.com',
      impact: { files_cleared: res.body.files_cleared },
    });
  });

  it('tokens are issued, listed without their secret, expire and are revoked by an admin', async () => {
    const issued = await h.api<{ id: string; token: string }>('POST', '/api/v1/admin/tokens', {
      tenant_id: h.tenantId,
      name: 'ci',
      subject: 'ci-bot',
      permissions: ['ingestion:read'],
      expires_in_seconds: 3600,
    });
    expect(issued.status).toBe(201);
    const ci = inProcessClient(h.app, issued.body.token);
    expect((await ci('GET', '/api/v1/ingestions')).status).toBe(200);
    const list = await h.api<{ items: { id: string; expires_at: string | null }[] }>(
      'GET',
      `/api/v1/admin/tokens?tenant_id=${h.tenantId}`,
    );
    expect(JSON.stringify(list.body)).not.toContain(issued.body.token);
    expect(list.body.items.find((t) => t.id === issued.body.id)!.expires_at).not.toBeNull();
    expect((await h.api('DELETE', `/api/v1/admin/tokens/${issued.body.id}`)).status).toBe(204);
    expect((await ci('GET', '/api/v1/ingestions')).status).toBe(401);

    const expired = await createToken(h.db, {
      tenantId: h.tenantId,
      name: 'old',
      subject: 'old',
      expiresAt: new Date(Date.now() - 1000),
    });
    expect((await inProcessClient(h.app, expired.token)('GET', '/api/v1/ingestions')).status).toBe(401);
  });
});
