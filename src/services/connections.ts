import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure, TimeoutFailure } from '@temporalio/common';
import { and, desc, eq } from 'drizzle-orm';
import { retireCachedTables } from '../catalog/retire-cached-tables.js';
import { connections, ingestions } from '../db/schema/index.js';
import { AppError, errors } from '../domain/errors.js';
import { newId } from '../lib/ids.js';
import { SecretRefError } from '../secrets/refs.js';
import { type ConnectionCheck, type ConnectionKind, sourceKind, type TestTarget } from '../sources/index.js';
import { workflowIds } from '../temporal/ids.js';
import { connectionTestWorkflow } from '../workflows/index.js';
import { armRetiredTables } from './cached-tables.js';
import type { ServiceDeps } from './deps.js';
import { isUniqueViolation } from './pg-errors.js';

export type ConnectionRow = typeof connections.$inferSelect;

/** A stored connection that would not work as it stands (e.g. an env credential outside the tenant's prefixes). */
export interface ConnectionProblem {
  error_code: string;
  field?: string;
  detail: string;
}

/** The kind's checks, with credential problems as the API reports them. */
async function checkConnection(
  deps: Pick<ServiceDeps, 'sources'>,
  tenantId: string,
  kind: ConnectionKind,
  config: unknown,
  network: boolean,
): Promise<void> {
  const k = sourceKind(kind);
  try {
    await k.checkConfig(k.configSchema.parse(config), await deps.sources(tenantId), { network });
  } catch (err) {
    if (err instanceof SecretRefError) throw new AppError(err.code, err.message, { field: err.field });
    throw err;
  }
}

export async function createConnection(
  deps: Pick<ServiceDeps, 'db' | 'sources'>,
  tenantId: string,
  input: { name: string; kind: ConnectionKind; config: unknown },
): Promise<ConnectionRow> {
  await checkConnection(deps, tenantId, input.kind, input.config, true);
  try {
    const [row] = await deps.db
      .insert(connections)
      .values({ id: newId('conn'), tenantId, name: input.name, kind: input.kind, config: input.config })
      .returning();
    return row!;
  } catch (err) {
    if (isUniqueViolation(err)) {
      throw new AppError('NAME_TAKEN', `A connection named "${input.name}" already exists`, {
        field: 'name',
      });
    }
    throw err;
  }
}

/** Why a stored connection would be refused now (its tenant's policy may have changed since). */
export async function connectionProblems(
  deps: Pick<ServiceDeps, 'sources'>,
  row: ConnectionRow,
): Promise<ConnectionProblem[]> {
  try {
    await checkConnection(deps, row.tenantId, row.kind, row.config, false);
    return [];
  } catch (err) {
    if (err instanceof AppError)
      return [{ error_code: err.code, field: err.extra.field, detail: err.message }];
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

/**
 * Deletes a connection no ingestion uses. A database connection's cached tables go with it: renamed
 * aside and queued for deletion after the grace period (retireCachedTables), in the same transaction.
 */
export async function deleteConnection(
  deps: Pick<ServiceDeps, 'db' | 'sql' | 'temporal' | 'taskQueue' | 'refresh'>,
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
  const retired = await deps.sql.begin(async (tx) => {
    await tx`delete from autoloader.connections where id = ${id} and tenant_id = ${tenantId}`;
    return retireCachedTables(tx, {
      tenantId,
      connectionId: id,
      graceSeconds: deps.refresh.swapGraceSeconds,
      reason: `connection ${id} deleted`,
    });
  });
  // Were the start lost, the start-up sweep arms them (resumePendingDeletions).
  await armRetiredTables(deps, tenantId, retired);
}

/**
 * Seed 002's test_connection(): the kind's checks, run by a worker (the API reaches no store
 * itself), each reported with what it found. Answers within seconds: each check has a deadline.
 */
export async function testConnection(
  deps: Pick<ServiceDeps, 'db' | 'temporal' | 'taskQueue'>,
  tenantId: string,
  id: string,
  target: TestTarget,
  timeoutMs = connectionTestTimeoutMs,
): Promise<{ ok: boolean; checks: ConnectionCheck[] }> {
  const row = await getConnection(deps, tenantId, id);
  const checks = await deps.temporal.workflow
    .execute(connectionTestWorkflow, {
      workflowId: workflowIds.connectionTest(row.id, newId('test')),
      taskQueue: deps.taskQueue,
      args: [{ connectionId: row.id, target }],
      workflowExecutionTimeout: timeoutMs,
    })
    .catch((err: unknown) => {
      // Deleted between the lookup above and the worker's read: gone, like any missing connection.
      if (err instanceof WorkflowFailedError && failureType(err) === 'ConnectionNotFound')
        throw errors.connectionNotFound();
      // No worker took the test in time, or its activity overran: the service's state, not the
      // connection's, so no check is reported as failed (a 500 until 2026-12-03).
      if (err instanceof WorkflowFailedError && timedOut(err))
        throw new AppError(
          'SERVICE_UNAVAILABLE',
          `No worker finished the connection's checks in time (${timeoutMs / 1000} s at most)`,
          { help: 'Retry shortly; if it persists, check that workers are running and not saturated' },
        );
      throw err;
    });
  return { ok: checks.length > 0 && checks.every((c) => c.ok), checks };
}

/**
 * Refuses to start work on a connection that would not work as it stands (a credential its tenant
 * may no longer use, a folder outside its roots): the same answer the connection got at creation.
 */
export async function requireUsableConnection(
  deps: Pick<ServiceDeps, 'db' | 'sources'>,
  tenantId: string,
  connectionId: string,
): Promise<void> {
  const row = await getConnection(deps, tenantId, connectionId);
  await checkConnection(deps, tenantId, row.kind, row.config, false);
}

/** How long a connection test waits for a worker to run its checks (each has its own deadline). */
export const connectionTestTimeoutMs = 60_000;

/** Whether a failed workflow timed out, itself or through its activity. */
function timedOut(err: WorkflowFailedError): boolean {
  for (let e: unknown = err.cause, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (e instanceof TimeoutFailure) return true;
  }
  return false;
}

/** The ApplicationFailure type at the root of a failed workflow (activity failure → its cause). */
function failureType(err: WorkflowFailedError): string | undefined {
  for (let e: unknown = err.cause, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (e instanceof ApplicationFailure) return e.type ?? undefined;
  }
  return undefined;
}
