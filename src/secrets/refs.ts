import { z } from 'zod';

/**
 * How a connection names a credential: a secret the tenant stored through the API (`{"secret":
 * "name"}`), or an environment variable of the workers (`{"env": "NAME"}`) — the latter only under
 * a prefix the operator allows the tenant (its policy's env_prefixes). Never the value itself.
 */
export const secretNamePattern = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
export const secretNameSchema = z
  .string()
  .regex(secretNamePattern, 'a secret name: letters, digits, _ . - (at most 128)');

export const envVarNameSchema = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, 'must be an environment variable name such as AWS_ACCESS_KEY_ID');

export const secretRefSchema = z
  .union([z.object({ secret: secretNameSchema }).strict(), z.object({ env: envVarNameSchema }).strict()])
  .describe(
    '{"secret": "<name stored with POST /secrets>"} or {"env": "<variable under an allowed prefix>"}',
  );
export type SecretRef = z.infer<typeof secretRefSchema>;

export const describeRef = (ref: SecretRef) =>
  'secret' in ref ? `secret "${ref.secret}"` : `env ${ref.env}`;

/** A credential reference the tenant may not use, or that names nothing: the connection cannot work. */
export class SecretRefError extends Error {
  override name = 'SecretRefError';
  constructor(
    readonly code: 'SECRET_NOT_ALLOWED' | 'VALIDATION_ERROR',
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

/** Resolves a tenant's credential references (bound to one tenant and its policy). */
export interface SecretResolver {
  /** The value; throws SecretRefError when not allowed or missing. `field` names the config field. */
  resolve(ref: SecretRef, field: string): Promise<string>;
  /** Throws SecretRefError when the reference is not allowed or names nothing; reads no value. */
  check(ref: SecretRef, field: string): Promise<void>;
}
