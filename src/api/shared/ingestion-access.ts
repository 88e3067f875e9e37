import { and, eq } from 'drizzle-orm';
import type { Db } from '../../db/client.js';
import { ingestions } from '../../db/schema/index.js';
import { errors } from '../errors.js';

export type IngestionRow = typeof ingestions.$inferSelect;

/** Another tenant's ingestion is indistinguishable from a missing one. */
export async function findIngestion(db: Db, tenantId: string, id: string): Promise<IngestionRow> {
  const [row] = await db
    .select()
    .from(ingestions)
    .where(and(eq(ingestions.id, id), eq(ingestions.tenantId, tenantId)));
  if (!row) throw errors.ingestionNotFound();
  return row;
}
