import { createHash, randomBytes } from 'node:crypto';
import { and, eq, gt, isNull, or } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { apiTokens, tenants } from '../db/schema/index.js';
import { newId } from '../lib/ids.js';
import { type TenantPolicy, tenantPolicySchema } from '../tenancy/policy.js';

/** The contract's permissions: every route declares exactly one (src/api/router.ts). */
export const permissions = [
  'connection:read',
  'connection:write',
  'connection:refresh',
  'ingestion:read',
  'ingestion:write',
  'ingestion:run',
  'ingestion:refresh',
  'admin',
] as const;
export type Permission = (typeof permissions)[number];

export interface Principal {
  tenantId: string;
  subject: string;
  tokenId: string;
  permissions: Permission[];
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export async function ensureTenant(
  db: Db,
  id: string,
  name: string,
  policy: Partial<TenantPolicy> = {},
): Promise<void> {
  await db
    .insert(tenants)
    .values({ id, name, policy: tenantPolicySchema.parse(policy) })
    .onConflictDoNothing();
}

/** Creates a token and returns its only plain-text copy: the database keeps a hash. */
export async function createToken(
  db: Db,
  opts: {
    tenantId: string;
    name: string;
    subject: string;
    permissions?: Permission[];
    expiresAt?: Date | null;
  },
): Promise<{ id: string; token: string }> {
  const token = `al_${randomBytes(24).toString('base64url')}`;
  const id = newId('tok');
  await db.insert(apiTokens).values({
    id,
    tenantId: opts.tenantId,
    name: opts.name,
    subject: opts.subject,
    tokenHash: hashToken(token),
    permissions: opts.permissions ?? [...permissions],
    expiresAt: opts.expiresAt ?? null,
  });
  return { id, token };
}

export async function tokenExists(db: Db, token: string): Promise<boolean> {
  return (await authenticate(db, token)) !== undefined;
}

export async function authenticate(db: Db, token: string): Promise<Principal | undefined> {
  const [row] = await db
    .select()
    .from(apiTokens)
    .where(
      and(
        eq(apiTokens.tokenHash, hashToken(token)),
        isNull(apiTokens.revokedAt),
        or(isNull(apiTokens.expiresAt), gt(apiTokens.expiresAt, new Date())),
      ),
    )
    .limit(1);
  if (!row) return undefined;
  return {
    tenantId: row.tenantId,
    subject: row.subject,
    tokenId: row.id,
    permissions: row.permissions.filter((p): p is Permission =>
      (permissions as readonly string[]).includes(p),
    ),
  };
}
