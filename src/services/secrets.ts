import { AppError } from '../domain/errors.js';
import { deleteSecret, listSecrets, putSecret, type SecretInfo } from '../secrets/store.js';
import type { ServiceDeps } from './deps.js';

function requireKey(deps: Pick<ServiceDeps, 'secretKey'>): Buffer {
  if (!deps.secretKey) {
    throw new AppError(
      'VALIDATION_ERROR',
      'This service has no AUTOLOADER_SECRET_KEY: secrets cannot be stored',
      {
        help: 'The operator sets AUTOLOADER_SECRET_KEY (npm start creates one in its data folder)',
      },
    );
  }
  return deps.secretKey;
}

/** Stores a new secret; a name already used is 409 (rotate with replaceSecret). */
export async function createSecret(
  deps: Pick<ServiceDeps, 'db' | 'secretKey'>,
  tenantId: string,
  input: { name: string; value: string },
): Promise<SecretInfo> {
  const info = await putSecret(deps.db, requireKey(deps), { tenantId, ...input, replace: false });
  if (!info)
    throw new AppError('NAME_TAKEN', `A secret named "${input.name}" already exists`, {
      field: 'name',
      help: `Rotate it with PUT /api/v1/secrets/${input.name}`,
    });
  return info;
}

/** Stores or rotates a secret: connections naming it use the new value from their next store (within a minute). */
export async function replaceSecret(
  deps: Pick<ServiceDeps, 'db' | 'secretKey'>,
  tenantId: string,
  input: { name: string; value: string },
): Promise<SecretInfo> {
  return (await putSecret(deps.db, requireKey(deps), { tenantId, ...input, replace: true }))!;
}

export function secretsOf(deps: Pick<ServiceDeps, 'db'>, tenantId: string): Promise<SecretInfo[]> {
  return listSecrets(deps.db, tenantId);
}

/** Deletes a secret no connection names. */
export async function removeSecret(deps: Pick<ServiceDeps, 'db' | 'sql'>, tenantId: string, name: string) {
  const users = await deps.sql<{ id: string }[]>`
    select id from autoloader.connections
    where tenant_id = ${tenantId} and jsonb_path_exists(config, '$.** ? (@.secret == $name)', jsonb_build_object('name', ${name}::text))
    limit 1`;
  if (users[0]) {
    throw new AppError('CONNECTION_IN_USE', `Secret "${name}" is named by connection ${users[0].id}`, {
      help: 'Point the connection at another secret first',
    });
  }
  if (!(await deleteSecret(deps.db, tenantId, name)))
    throw new AppError('NOT_FOUND', `No secret named "${name}"`);
}
