import { and, desc, eq } from 'drizzle-orm';
import type { Principal } from '../auth/tokens.js';
import { connections, ingestions, type RunStatus } from '../db/schema/index.js';
import { dropTable } from '../destination/table.js';
import { AppError, errors } from '../domain/errors.js';
import { type Destination, mergeSource, type Source, sourceSchema } from '../domain/schemas.js';
import { newId } from '../lib/ids.js';
import { isDatabaseKind, sourceKind } from '../sources/index.js';
import {
  claimDestination,
  destinationUnavailable,
  forgetDestination,
  releaseDestination,
} from '../tenancy/ownership.js';
import { loadTenantPolicy } from '../tenancy/policy.js';
import type { ServiceDeps } from './deps.js';
import { refuseIfBusy } from './operations.js';
import { isUniqueViolation } from './pg-errors.js';
import { closeIfStale } from './runs.js';
import { deleteScheduleIfAny } from './schedules.js';

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
  if (isDatabaseKind(kind)) {
    throw new AppError(
      'VALIDATION_ERROR',
      `Invalid body: connection_id: a ${kind} connection holds tables, not files; refresh them with POST /api/v1/refresh`,
      { field: 'connection_id' },
    );
  }
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
  deps: Pick<ServiceDeps, 'db' | 'sql'>,
  principal: Principal,
  input: {
    name: string;
    connectionId: string;
    source: Source;
    destination: Destination;
    /** Take over an existing table the service did not create (admin only, audited). */
    adoptExistingTable?: boolean;
  },
): Promise<IngestionRow> {
  const tenantId = principal.tenantId;
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
  const adopt = input.adoptExistingTable === true;
  if (adopt && !principal.permissions.includes('admin')) throw errors.insufficientPermissions('admin');
  const policy = await loadTenantPolicy(deps.sql, tenantId);
  const id = newId('ing');
  try {
    await deps.sql.begin(async (tx) => {
      await tx`
        insert into autoloader.ingestions (id, tenant_id, name, connection_id, source, destination_schema, destination_table)
        values (${id}, ${tenantId}, ${input.name}, ${conn.id}, ${tx.json(input.source as never)},
                ${input.destination.schema}, ${input.destination.table})`;
      const claim = await claimDestination(tx, {
        tenantId,
        policy,
        ingestionId: id,
        schema: input.destination.schema,
        table: input.destination.table,
        adopt,
      });
      if (claim.adopted) {
        await tx`
          insert into autoloader.audit_events (tenant_id, subject, action, ingestion_id, dry_run, impact, result)
          values (${tenantId}, ${principal.subject}, 'adopt_table', ${id}, false,
                  ${tx.json({ table_name: `${input.destination.schema}.${input.destination.table}` })}, 'success')`;
      }
    });
  } catch (err) {
    if (isUniqueViolation(err, 'ingestions_tenant_name_idx')) {
      throw new AppError('NAME_TAKEN', `An ingestion named "${input.name}" already exists`, {
        field: 'name',
      });
    }
    if (isUniqueViolation(err)) throw destinationUnavailable();
    throw err;
  }
  return findIngestion(deps, tenantId, id);
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
  patch: { name?: string; source?: Record<string, unknown>; status?: 'active' | 'paused' },
): Promise<IngestionRow> {
  const current = await findIngestion(deps, tenantId, id);
  const merged = patch.source
    ? mergeSource(current.source as Record<string, unknown>, patch.source)
    : current.source;
  const source = sourceSchema.safeParse(merged);
  if (!source.success) {
    const issue = source.error.issues[0];
    const field = ['source', ...(issue?.path ?? [])].join('.');
    throw new AppError('VALIDATION_ERROR', `Invalid body: ${field}: ${issue?.message ?? 'invalid'}`, {
      field,
    });
  }
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

/**
 * Deletes an ingestion, its history, runs and schedules (refused while something runs). Its table is
 * kept and stays the tenant's — another ingestion of the tenant may load it again — unless
 * `dropTable` (with confirm at the API), which drops it too.
 */
export async function deleteIngestion(
  deps: Pick<ServiceDeps, 'db' | 'sql' | 'temporal'>,
  principal: Principal,
  id: string,
  opts: { dropTable: boolean },
): Promise<{ tableDropped: boolean }> {
  const row = await findIngestion(deps, principal.tenantId, id);
  const busy = 'Cannot delete an ingestion while an operation runs';
  await refuseIfBusy(deps.temporal, row.id, busy);
  const open = await deps.sql<{ id: string; workflowId: string; status: RunStatus }[]>`
    select id, workflow_id as "workflowId", status from autoloader.runs
    where ingestion_id = ${row.id} and status in ('RUNNING', 'PAUSED')`;
  for (const run of open) {
    // A run whose workflow is gone is closed now; one still going (or paused) holds the ingestion.
    if (!(await closeIfStale(deps, run))) throw errors.runInProgress(run.id, busy);
  }
  // Its schedule goes with it: left behind, it would keep firing at an ingestion that is gone.
  await deleteScheduleIfAny(deps, row.id);
  const table = { schema: row.destinationSchema, table: row.destinationTable };
  return deps.sql.begin(async (tx) => {
    let tableDropped = false;
    if (opts.dropTable) {
      const stats = await dropTable(tx, table);
      tableDropped = stats.table_existed;
      await forgetDestination(tx, table.schema, table.table);
      await tx`
        insert into autoloader.audit_events (tenant_id, subject, action, ingestion_id, dry_run, impact, result)
        values (${principal.tenantId}, ${principal.subject}, 'delete_ingestion', ${row.id}, false,
                ${tx.json({ ...stats })}, 'success')`;
    } else {
      await releaseDestination(tx, row.id);
    }
    await tx`delete from autoloader.ingestions where id = ${row.id}`;
    return { tableDropped };
  });
}
