import { and, asc, eq } from 'drizzle-orm';
import type { Db, Sql } from '../db/client.js';
import { secrets } from '../db/schema/index.js';
import { newId } from '../lib/ids.js';
import { isEnvAllowed, type TenantPolicy } from '../tenancy/policy.js';
import { open, seal } from './crypto.js';
import { describeRef, type SecretRef, SecretRefError, type SecretResolver } from './refs.js';

export interface SecretInfo {
  name: string;
  createdAt: Date;
  updatedAt: Date;
}

/** Stores (or, with `replace`, rotates) a secret; returns false when it exists and `replace` is off. */
export async function putSecret(
  db: Db,
  key: Buffer,
  input: { tenantId: string; name: string; value: string; replace: boolean },
): Promise<SecretInfo | undefined> {
  const sealed = seal(key, input.tenantId, input.name, input.value);
  const insert = db
    .insert(secrets)
    .values({ id: newId('sec'), tenantId: input.tenantId, name: input.name, sealed });
  const rows = input.replace
    ? await insert
        .onConflictDoUpdate({
          target: [secrets.tenantId, secrets.name],
          set: { sealed, updatedAt: new Date() },
        })
        .returning()
    : await insert.onConflictDoNothing().returning();
  const row = rows[0];
  return row && { name: row.name, createdAt: row.createdAt, updatedAt: row.updatedAt };
}

export async function listSecrets(db: Db, tenantId: string): Promise<SecretInfo[]> {
  return db
    .select({ name: secrets.name, createdAt: secrets.createdAt, updatedAt: secrets.updatedAt })
    .from(secrets)
    .where(eq(secrets.tenantId, tenantId))
    .orderBy(asc(secrets.name));
}

export async function deleteSecret(db: Db, tenantId: string, name: string): Promise<boolean> {
  const rows = await db
    .delete(secrets)
    .where(and(eq(secrets.tenantId, tenantId), eq(secrets.name, name)))
    .returning({ name: secrets.name });
  return rows.length > 0;
}

/**
 * The tenant's resolver: stored secrets are opened with the service key; env references are read
 * from this process's environment, but only under a prefix the tenant's policy allows.
 */
export function secretResolver(deps: {
  sql: Sql;
  key: Buffer | undefined;
  env: NodeJS.ProcessEnv;
  tenantId: string;
  policy: TenantPolicy;
}): SecretResolver {
  const stored = async (name: string) => {
    const [row] = await deps.sql<{ sealed: Buffer }[]>`
      select sealed from autoloader.secrets where tenant_id = ${deps.tenantId} and name = ${name}`;
    return row?.sealed;
  };
  const check = async (ref: SecretRef, field: string): Promise<void> => {
    if ('secret' in ref) {
      if (!(await stored(ref.secret)))
        throw new SecretRefError(
          'VALIDATION_ERROR',
          field,
          `${field}: no secret named "${ref.secret}" (store it with POST /api/v1/secrets)`,
        );
      return;
    }
    if (!isEnvAllowed(deps.policy, ref.env)) {
      throw new SecretRefError(
        'SECRET_NOT_ALLOWED',
        field,
        `${field}: environment variable ${ref.env} is not under a prefix the operator allows this tenant; store the credential with POST /api/v1/secrets instead`,
      );
    }
  };
  return {
    check,
    async resolve(ref, field) {
      await check(ref, field);
      if ('secret' in ref) {
        if (!deps.key)
          throw new SecretRefError(
            'VALIDATION_ERROR',
            field,
            'AUTOLOADER_SECRET_KEY is not set on this process',
          );
        return open(deps.key, deps.tenantId, ref.secret, (await stored(ref.secret))!);
      }
      const value = deps.env[ref.env];
      if (!value)
        throw new SecretRefError(
          'VALIDATION_ERROR',
          field,
          `${field}: ${describeRef(ref)} is not set on the worker`,
        );
      return value;
    },
  };
}
