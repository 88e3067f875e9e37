import path from 'node:path';
import type postgres from 'postgres';
import { z } from 'zod';
import { isAllowedDestinationSchema } from '../lib/identifiers.js';

/**
 * What the operator allows one tenant, kept with the tenant (PUT /api/v1/admin/tenants/{id}):
 * - `local_roots`: folders its `local` connections may read (each checked with realpath on every open);
 * - `env_prefixes`: environment-variable prefixes its connections may name as credentials;
 * - `allow_default_credentials`: whether an S3 connection without credentials may use the service's
 *   own identity (the default AWS credential chain) — off by default, since that identity may read
 *   every bucket the service can;
 * - `schema_prefix`: when set, its destination schemas must be this name or start with it and `_`,
 *   so tenants cannot even name each other's tables;
 * - `max_schedules`: schedules it may have (runs and refreshes together).
 */
export const tenantPolicySchema = z
  .object({
    local_roots: z
      .array(
        z
          .string()
          .min(1)
          .refine((p) => path.isAbsolute(p), 'must be an absolute path'),
      )
      .max(50)
      .default([]),
    env_prefixes: z
      .array(
        z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{1,63}$/, 'an environment-variable prefix such as ACME_'),
      )
      .max(50)
      .default([]),
    allow_default_credentials: z.boolean().default(false),
    schema_prefix: z
      .string()
      .refine(isAllowedDestinationSchema, 'a lower-case SQL identifier, not a system schema')
      .nullable()
      .default(null),
    max_schedules: z.number().int().min(0).max(10_000).default(100),
  })
  .strict();
export type TenantPolicy = z.infer<typeof tenantPolicySchema>;

export async function loadTenantPolicy(sql: postgres.Sql, tenantId: string): Promise<TenantPolicy> {
  const [row] = await sql<
    { policy: unknown }[]
  >`select policy from autoloader.tenants where id = ${tenantId}`;
  // A policy stored by an older version may lack newer fields: the schema fills in their defaults.
  const parsed = tenantPolicySchema.safeParse(row?.policy ?? {});
  return parsed.success ? parsed.data : tenantPolicySchema.parse({});
}

export function isEnvAllowed(policy: TenantPolicy, name: string): boolean {
  return policy.env_prefixes.some((prefix) => name.startsWith(prefix));
}

/** Whether `schema` is one this tenant may name (its schema_prefix, when it has one). */
export function schemaAllowed(policy: TenantPolicy, schema: string): boolean {
  const prefix = policy.schema_prefix;
  return prefix === null || schema === prefix || schema.startsWith(`${prefix}_`);
}
