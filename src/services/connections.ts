import { and, desc, eq } from 'drizzle-orm';
import { connections, ingestions } from '../db/schema/index.js';
import { AppError, errors } from '../domain/errors.js';
import { newId } from '../lib/ids.js';
import { type ConnectionKind, sourceKind } from '../sources/index.js';
import type { ServiceDeps } from './deps.js';
import { isUniqueViolation } from './pg-errors.js';

export type ConnectionRow = typeof connections.$inferSelect;

export async function createConnection(
  deps: Pick<ServiceDeps, 'db' | 'localSourceRoots'>,
  tenantId: string,
  input: { name: string; kind: ConnectionKind; config: unknown },
): Promise<ConnectionRow> {
  const kind = sourceKind(input.kind);
  kind.checkConfig?.(input.config, { localSourceRoots: deps.localSourceRoots, env: process.env });
  try {
    const [row] = await deps.db
      .insert(connections)
      .values({ id: newId('conn'), tenantId, name: input.name, kind: input.kind, config: input.config })
      .returning();
    return row!;
  } catch (err) {
    if (isUniqueViolation(err)) {
      throw new AppError('CONNECTION_EXISTS', `A connection named "${input.name}" already exists`);
    }
    throw err;
  }
}

export async function listConnections(
  deps: Pick<ServiceDeps, 'db'>,
  tenantId: string,
): Promise<ConnectionRow[]> {
  return deps.db
    .select()
    .from(connections)
    .where(eq(connections.tenantId, tenantId))
    .orderBy(desc(connections.createdAt));
}

/** Another tenant's connection is indistinguishable from a missing one. */
export async function getConnection(
  deps: Pick<ServiceDeps, 'db'>,
  tenantId: string,
  id: string,
): Promise<ConnectionRow> {
  const [row] = await deps.db
    .select()
    .from(connections)
    .where(and(eq(connections.id, id), eq(connections.tenantId, tenantId)));
  if (!row) throw errors.connectionNotFound();
  return row;
}

/** Deletes a connection no ingestion uses. */
export async function deleteConnection(
  deps: Pick<ServiceDeps, 'db'>,
  tenantId: string,
  id: string,
): Promise<void> {
  await getConnection(deps, tenantId, id);
  const [used] = await deps.db
    .select({ id: ingestions.id })
    .from(ingestions)
    .where(eq(ingestions.connectionId, id))
    .limit(1);
  if (used) {
    throw new AppError('CONNECTION_IN_USE', `Connection is used by ingestion ${used.id}`, {
      help: 'Delete or re-point its ingestions first',
    });
  }
  await deps.db.delete(connections).where(and(eq(connections.id, id), eq(connections.tenantId, tenantId)));
}
