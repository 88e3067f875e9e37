import { and, asc, desc, eq, isNull } from 'drizzle-orm';
import { createToken, type Permission } from '../auth/tokens.js';
import { apiTokens, tenants } from '../db/schema/index.js';
import { AppError } from '../domain/errors.js';
import { type TenantPolicy, tenantPolicySchema } from '../tenancy/policy.js';
import { rootProblem } from '../tenancy/roots.js';
import type { ServiceDeps } from './deps.js';

/** The operator's side: tenants, what each may use, and their tokens (the `admin` permission). */

export interface TenantView {
  id: string;
  name: string;
  policy: TenantPolicy;
  createdAt: Date;
}

function checkRoots(policy: TenantPolicy, dataDir: string): void {
  policy.local_roots.forEach((root, i) => {
    const problem = rootProblem(root, dataDir);
    if (problem) throw new AppError('PATH_NOT_ALLOWED', problem, { field: `policy.local_roots.${i}` });
  });
}

export async function listTenants(deps: Pick<ServiceDeps, 'db'>): Promise<TenantView[]> {
  const rows = await deps.db.select().from(tenants).orderBy(asc(tenants.id));
  return rows.map((r) => ({ ...r, policy: tenantPolicySchema.parse(r.policy) }));
}

/** Creates or updates a tenant and its policy (the policy given replaces the stored one). */
export async function putTenant(
  deps: Pick<ServiceDeps, 'db' | 'dataDir'>,
  input: { id: string; name: string; policy: TenantPolicy },
): Promise<TenantView> {
  checkRoots(input.policy, deps.dataDir);
  const [row] = await deps.db
    .insert(tenants)
    .values({ id: input.id, name: input.name, policy: input.policy })
    .onConflictDoUpdate({ target: tenants.id, set: { name: input.name, policy: input.policy } })
    .returning();
  return { ...row!, policy: tenantPolicySchema.parse(row!.policy) };
}

export interface TokenView {
  id: string;
  tenantId: string;
  name: string;
  subject: string;
  permissions: string[];
  createdAt: Date;
  expiresAt: Date | null;
  revokedAt: Date | null;
}

export async function issueToken(
  deps: Pick<ServiceDeps, 'db'>,
  input: {
    tenantId: string;
    name: string;
    subject: string;
    permissions: Permission[];
    expiresAt: Date | null;
  },
): Promise<{ id: string; token: string }> {
  const [tenant] = await deps.db
    .select({ id: tenants.id })
    .from(tenants)
    .where(eq(tenants.id, input.tenantId));
  if (!tenant)
    throw new AppError('VALIDATION_ERROR', 'Invalid body: tenant_id: no such tenant', { field: 'tenant_id' });
  return createToken(deps.db, input);
}

/** Tokens, never their secret (only a hash is kept). */
export async function listTokens(deps: Pick<ServiceDeps, 'db'>, tenantId?: string): Promise<TokenView[]> {
  const rows = await deps.db
    .select()
    .from(apiTokens)
    .where(tenantId ? eq(apiTokens.tenantId, tenantId) : undefined)
    .orderBy(desc(apiTokens.createdAt));
  return rows.map(({ tokenHash: _hash, ...rest }) => rest);
}

export async function revokeToken(deps: Pick<ServiceDeps, 'db'>, id: string): Promise<void> {
  const rows = await deps.db
    .update(apiTokens)
    .set({ revokedAt: new Date() })
    .where(and(eq(apiTokens.id, id), isNull(apiTokens.revokedAt)))
    .returning({ id: apiTokens.id });
  if (rows.length === 0) {
    const [exists] = await deps.db.select({ id: apiTokens.id }).from(apiTokens).where(eq(apiTokens.id, id));
    if (!exists) throw new AppError('NOT_FOUND', 'No such token');
  }
}
