import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { runNode } from '../helpers/child-process.js';
import { type Harness, startHarness } from '../helpers/harness.js';

/**
 * `npm run token`: the operator's first token in production, written straight to the state
 * database. Run as a child process, as an operator would, against the test Postgres.
 */
const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const databaseUrl = inject('databaseUrl');

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

function token(args: string[], env: Record<string, string | undefined> = { DATABASE_URL: databaseUrl }) {
  return runNode(['--import', 'tsx', 'src/bin/token.ts', ...args], {
    cwd: repoRoot,
    env: { ...process.env, NODE_ENV: 'production', ...env },
  });
}

const call = (path: string, bearer: string, init: RequestInit = {}) =>
  h.app.request(path, {
    ...init,
    headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json', ...init.headers },
  });

describe('npm run token', () => {
  it('issues an admin token for a new tenant, printed once, that the API accepts', async () => {
    const tenant = `ops-${randomUUID().slice(0, 8)}`;
    const res = await token(['--tenant', tenant]);
    expect(res.code, res.stderr).toBe(0);
    const issued = res.stdout.trim();
    expect(issued).toMatch(/^al_[A-Za-z0-9_-]{20,}$/);
    expect(res.stderr).toContain(`for tenant ${tenant} (admin)`);
    // Only a hash is stored: the value printed is nowhere in the database.
    const [stored] = await h.sql<{ n: number }[]>`
      select count(*)::int as n from autoloader.api_tokens where token_hash = ${issued}`;
    expect(stored!.n).toBe(0);

    const tenants = await call('/api/v1/admin/tenants', issued);
    expect(tenants.status).toBe(200);
    const body = (await tenants.json()) as { items: { id: string; policy: { env_prefixes: string[] } }[] };
    expect(body.items.find((t) => t.id === tenant)?.policy.env_prefixes).toEqual([]);
  });

  it('gives a token only the permissions asked for, and leaves an existing tenant policy alone', async () => {
    const tenant = `team-${randomUUID().slice(0, 8)}`;
    const admin = (await token(['--tenant', tenant])).stdout.trim();
    const put = await call(`/api/v1/admin/tenants/${tenant}`, admin, {
      method: 'PUT',
      body: JSON.stringify({ name: 'Team', policy: { env_prefixes: ['TEAM_'] } }),
    });
    expect(put.status).toBe(200);

    const res = await token(['--tenant', tenant, '--permissions', 'ingestion:read', '--expires-days', '7']);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).toMatch(/expires \d{4}-\d\d-\d\dT/);
    const reader = res.stdout.trim();
    expect((await call('/api/v1/ingestions', reader)).status).toBe(200);
    const refused = await call('/api/v1/admin/tenants', reader);
    expect(refused.status).toBe(403);
    expect(((await refused.json()) as { error_code: string }).error_code).toBe('INSUFFICIENT_PERMISSIONS');

    const [row] = await h.sql<{ policy: { env_prefixes: string[] }; name: string }[]>`
      select policy, name from autoloader.tenants where id = ${tenant}`;
    expect(row!.name).toBe('Team');
    expect(row!.policy.env_prefixes).toEqual(['TEAM_']);
  });

  it('refuses bad arguments and a missing DATABASE_URL with exit 2 and what to do', async () => {
    const unknown = await token(['--tenant', 'x1', '--permissions', 'admin,root']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('--permissions: unknown root');
    expect(unknown.stdout).toBe('');

    const noTenant = await token([]);
    expect(noTenant.code).toBe(2);
    expect(noTenant.stderr).toContain('usage: npm run token');

    const badTenant = await token(['--tenant', "x'; drop table x; --"]);
    expect(badTenant.code).toBe(2);

    const noDb = await token(['--tenant', 'x1'], { DATABASE_URL: undefined });
    expect(noDb.code).toBe(2);
    expect(noDb.stderr).toContain('DATABASE_URL is not set');
  });
});
