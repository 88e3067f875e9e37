import { and, desc, eq } from 'drizzle-orm';
import { connections, ingestions } from '../db/schema/index.js';
import { AppError, errors } from '../domain/errors.js';
import { type Destination, type Source, sourceSchema } from '../domain/schemas.js';
import { newId } from '../lib/ids.js';
import { sourceKind } from '../sources/index.js';
import type { ServiceDeps } from './deps.js';
import { currentOperationId } from './operations.js';
import { isUniqueViolation } from './pg-errors.js';

export type IngestionRow = typeof ingestions.$inferSelect;

/** Another tenant's ingestion is indistinguishable from a missing one. */
export async function findIngestion(
  deps: Pick<ServiceDeps, 'db'>,
  tenantId: string,
  id: string,
): Promise<IngestionRow> {
  const [row] = await deps.db
    .select()
    .from(ingestions)
    .where(and(eq(ingestions.id, id), eq(ingestions.tenantId, tenantId)));
  if (!row) throw errors.ingestionNotFound();
  return row;
}

/** A source must name what its connection's kind needs (a bucket for an object store with buckets). */
function checkSourceFitsConnection(kind: string, source: { bucket?: string }): void {
  if (sourceKind(kind).needsBucket && !source.bucket) {
    throw new AppError(
      'VALIDATION_ERROR',
      `Invalid body: source.bucket: required for an ${kind} connection`,
      {
        field: 'source.bucket',
      },
    );
  }
}

export async function createIngestion(
  deps: Pick<ServiceDeps, 'db'>,
  tenantId: string,
  input: { name: string; connectionId: string; source: Source; destination: Destination },
): Promise<IngestionRow> {
  const [conn] = await deps.db
    .select()
    .from(connections)
    .where(and(eq(connections.id, input.connectionId), eq(connections.tenantId, tenantId)));
  if (!conn) {
    throw new AppError('VALIDATION_ERROR', 'Invalid body: connection_id: no such connection', {
      field: 'connection_id',
    });
  }
  checkSourceFitsConnection(conn.kind, input.source);
  try {
    const [row] = await deps.db
      .insert(ingestions)
      .values({
        id: newId('ing'),
        tenantId,
        name: input.name,
        connectionId: conn.id,
        source: input.source,
        destinationSchema: input.destination.schema,
        destinationTable: input.destination.table,
      })
      .returning();
    return row!;
  } catch (err) {
    if (isUniqueViolation(err)) {
      const what = isUniqueViolation(err, 'ingestions_destination_idx') ? 'destination table' : 'name';
      throw new AppError('INGESTION_EXISTS', `Another ingestion already uses this ${what}`);
    }
    throw err;
  }
}

export async function listIngestions(
  deps: Pick<ServiceDeps, 'db'>,
  tenantId: string,
): Promise<IngestionRow[]> {
  return deps.db
    .select()
    .from(ingestions)
    .where(eq(ingestions.tenantId, tenantId))
    .orderBy(desc(ingestions.createdAt));
}

export async function updateIngestion(
  deps: Pick<ServiceDeps, 'db'>,
  tenantId: string,
  id: string,
  patch: { name?: string; source?: Partial<Source>; status?: 'active' | 'paused' },
): Promise<IngestionRow> {
  const current = await findIngestion(deps, tenantId, id);
  const merged = patch.source ? { ...(current.source as object), ...patch.source } : current.source;
  const source = sourceSchema.safeParse(merged);
  if (!source.success)
    throw new AppError('VALIDATION_ERROR', `Invalid body: source: ${source.error.issues[0]?.message}`);
  const [conn] = await deps.db.select().from(connections).where(eq(connections.id, current.connectionId));
  checkSourceFitsConnection(conn!.kind, source.data);
  const [row] = await deps.db
    .update(ingestions)
    .set({
      name: patch.name ?? current.name,
      source: source.data,
      status: patch.status ?? current.status,
      updatedAt: new Date(),
    })
    .where(eq(ingestions.id, current.id))
    .returning();
  return row!;
}

/** Deletes an ingestion and its history (the destination table is kept); refused while something runs. */
export async function deleteIngestion(
  deps: Pick<ServiceDeps, 'db' | 'sql' | 'temporal'>,
  tenantId: string,
  id: string,
): Promise<void> {
  const row = await findIngestion(deps, tenantId, id);
  const [open] = await deps.sql<{ id: string }[]>`
    select id from autoloader.runs where ingestion_id = ${row.id} and status = 'RUNNING' limit 1`;
  if (open) {
    const running = (await currentOperationId(deps.temporal, row.id).catch(() => open.id)) ?? open.id;
    throw errors.runInProgress(running, 'Cannot delete an ingestion while an operation runs');
  }
  await deps.db.delete(ingestions).where(eq(ingestions.id, row.id));
}
