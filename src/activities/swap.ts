import { randomBytes } from 'node:crypto';
import { ApplicationFailure, log } from '@temporalio/activity';
import postgres from 'postgres';
import { type CarriedOver, SwapRefused } from '../destination/carry-over.js';
import { describeTable, dropIfExists, swapIn, tableExists, versionedName } from '../destination/table.js';
import { discardScope, promoteScope } from '../ledger/processed-files.js';
import { newId } from '../lib/ids.js';
import type { ActivityDeps } from './deps.js';
import { loadIngestionContext } from './ingestion-context.js';

export interface SwapResult {
  liveTable: string;
  /** The previous version, renamed aside; null when there was none. */
  oldTable: string | null;
  deletion: { id: string; dueAt: string } | null;
  /** What the new version took over from the live one; null on a retry of a swap already done. */
  carriedOver: CarriedOver | null;
}

/**
 * How long the swap waits for the live table's lock. Readers queue behind the waiting rename, so
 * the wait is kept short; the activity is retried (with backoff) when a long reader holds on.
 */
export const swapLockTimeout = '5s';

/**
 * The file history of a version a swap set aside, kept under a scope named after its table until the
 * version's pending deletion is carried out: a rollback within the grace period brings the two back
 * together, so the next run continues from that version's history.
 */
export const asideHistoryScope = (table: string) => `aside:${table}`;

/** Moves the live file history to `scope` (see asideHistoryScope). */
export async function setLiveHistoryAside(
  tx: postgres.TransactionSql,
  ingestionId: string,
  scope: string,
): Promise<void> {
  await tx`update autoloader.processed_files set scope = ${scope} where ingestion_id = ${ingestionId} and scope = 'live'`;
}

/** Queues a version set aside for deletion after the grace period; the caller starts its timer workflow. */
export async function queueDeletion(
  tx: postgres.TransactionSql,
  input: { ingestionId: string; operationId: string; schema: string; table: string; graceSeconds: number },
): Promise<{ id: string; dueAt: string }> {
  const id = newId('del');
  const [row] = await tx<{ dueAt: Date }[]>`
    insert into autoloader.pending_deletions (id, ingestion_id, operation_id, tenant_id, schema_name, table_name, due_at)
    select ${id}, i.id, ${input.operationId}, i.tenant_id, ${input.schema}, ${input.table}, now() + make_interval(secs => ${input.graceSeconds})
    from autoloader.ingestions i where i.id = ${input.ingestionId}
    returning due_at as "dueAt"`;
  return { id, dueAt: row!.dueAt.toISOString() };
}

/**
 * Seed 004's atomic swap: in one transaction the live table is renamed aside, the shadow table takes
 * its name with everything users added to the live table (grants, policies, indexes, comments,
 * defaults) and the views reading it re-pointed, the shadow's file history becomes the live history,
 * and the old version is queued for deletion, its own history set aside with it (asideHistoryScope).
 * Readers block for the instant of the rename and then see the new version: never a missing or
 * half-built table. Idempotent: a retry after the commit finds the swap done.
 *
 * When the swap would break readers (a materialized view on the table, a view whose column is gone)
 * it is refused before anything changes: the live table stays as it was, the shadow and its history
 * are discarded in the same transaction, and the operation fails naming what stands in the way.
 */
export function makeSwapTables({ sql }: ActivityDeps) {
  return async function swapTables(input: {
    operationId: string;
    ingestionId: string;
    shadowTable: string;
    scope: string;
    graceSeconds: number;
  }): Promise<SwapResult> {
    const { destination } = await loadIngestionContext(sql, input.ingestionId);
    const { schema, table } = destination;
    const shadow = { schema, table: input.shadowTable };
    const outcome = await sql.begin(async (tx): Promise<SwapResult | { refused: string }> => {
      const [done] = await tx<{ id: string; tableName: string; dueAt: Date }[]>`
        select id, table_name as "tableName", due_at as "dueAt" from autoloader.pending_deletions
        where operation_id = ${input.operationId}`;
      if (done)
        return {
          liveTable: `${schema}.${table}`,
          oldTable: `${schema}.${done.tableName}`,
          deletion: { id: done.id, dueAt: done.dueAt.toISOString() },
          carriedOver: null,
        };
      if (!(await tableExists(tx, shadow))) {
        // A missing shadow is an empty new version only if the run loaded nothing. A retry of a swap
        // that committed (refused, or done with no previous version to queue) answers as it did;
        // anything else that removed loaded rows never gets an empty table swapped in for the live one.
        const [op] = await tx<{ error: string | null; records: number | null; promoted: boolean }[]>`
          select o.error, r.records_written::float8 as records,
                 exists (select 1 from autoloader.processed_files f
                         where f.ingestion_id = o.ingestion_id and f.scope = 'live' and f.run_id = o.run_id) as promoted
          from autoloader.operations o left join autoloader.runs r on r.id = o.run_id
          where o.id = ${input.operationId}`;
        if (op?.error) return { refused: op.error };
        if (op?.promoted)
          return { liveTable: `${schema}.${table}`, oldTable: null, deletion: null, carriedOver: null };
        if ((op?.records ?? 0) > 0)
          throw ApplicationFailure.nonRetryable(
            `the new version ${describeTable(shadow)} is gone; ${describeTable(destination)} kept as it was`,
            'ShadowMissing',
          );
      }
      await tx`select set_config('lock_timeout', ${swapLockTimeout}, true)`;

      const candidateOld = versionedName(table, 'old', randomBytes(4).toString('hex'));
      let swapped: Awaited<ReturnType<typeof swapIn>>;
      try {
        swapped = await tx.savepoint((sp) => swapIn(sp, destination, input.shadowTable, candidateOld));
      } catch (err) {
        if (!(err instanceof SwapRefused)) throw err;
        await dropIfExists(tx, shadow);
        await discardScope(tx, input.ingestionId, input.scope);
        // Recorded with the discard, so a retry of this activity answers the same refusal.
        await tx`update autoloader.operations set error = ${err.message} where id = ${input.operationId}`;
        return { refused: err.message };
      }
      const oldTable = swapped.hadLive ? candidateOld : null;
      if (oldTable) await setLiveHistoryAside(tx, input.ingestionId, asideHistoryScope(oldTable));
      await promoteScope(tx, input.ingestionId, input.scope);
      const notes = carriedOverNotes(swapped.carried);
      if (notes.length > 0)
        await tx`update autoloader.operations set notes = notes || ${tx.json(notes)}::jsonb where id = ${input.operationId}`;

      const deletion = oldTable
        ? await queueDeletion(tx, {
            ingestionId: input.ingestionId,
            operationId: input.operationId,
            schema,
            table: oldTable,
            graceSeconds: input.graceSeconds,
          })
        : null;
      return {
        liveTable: `${schema}.${table}`,
        oldTable: oldTable && `${schema}.${oldTable}`,
        deletion,
        carriedOver: swapped.carried,
      };
    });
    if ('refused' in outcome) {
      log.warn('swap refused', { table: describeTable(destination), reason: outcome.refused });
      throw ApplicationFailure.nonRetryable(outcome.refused, 'SwapRefused');
    }
    if (outcome.carriedOver) log.info('table swapped', { table: outcome.liveTable, ...outcome.carriedOver });
    return outcome;
  };
}

/** The operation's notes on what the swap carried over, could not, and never does. */
function carriedOverNotes(c: CarriedOver): string[] {
  const parts = [
    c.owner && `owner ${c.owner}`,
    c.grants.length > 0 && `grants (${c.grants.join('; ')})`,
    c.row_level_security && `row-level security (${c.row_level_security})`,
    c.policies.length > 0 && `policies (${c.policies.join(', ')})`,
    c.indexes.length > 0 && `indexes (${c.indexes.join(', ')})`,
    c.comments.length > 0 && `comments (${c.comments.join(', ')})`,
    c.column_defaults.length > 0 && `column defaults (${c.column_defaults.join(', ')})`,
    c.views_rebound.length > 0 && `views re-pointed at it (${c.views_rebound.join(', ')})`,
    c.views_through.length > 0 && `views reading it through those (${c.views_through.join(', ')})`,
  ].filter((p): p is string => typeof p === 'string');
  const notes: string[] = [];
  if (parts.length > 0) notes.push(`The new version took over: ${parts.join('; ')}`);
  if (c.skipped.length > 0) notes.push(`Not carried over to the new version: ${c.skipped.join('; ')}`);
  if (c.not_carried_over.length > 0)
    notes.push(
      `A swap does not carry over (re-create them on the new version): ${c.not_carried_over.join('; ')}`,
    );
  return notes;
}

/** Drops a shadow table and its file history after a failed shadow run: the live version stays as it was. */
export function makeDiscardShadow({ sql }: ActivityDeps) {
  return async function discardShadow(input: {
    ingestionId: string;
    shadowTable: string;
    scope: string;
  }): Promise<void> {
    const { destination } = await loadIngestionContext(sql, input.ingestionId);
    await sql.begin(async (tx) => {
      await dropIfExists(tx, { schema: destination.schema, table: input.shadowTable });
      await discardScope(tx, input.ingestionId, input.scope);
    });
  };
}

/**
 * Attempts at a deletion the database refuses (something depends on the old version, a lock is held
 * on it for good) before it is given up and left for a person: its row then says why.
 */
export const deletionMaxAttempts = 5;

/** How long a drop waits for readers of the old version before the attempt fails (and is retried). */
const deletionLockTimeout = '10s';

/**
 * Carries out one pending deletion, and drops the file history set aside with the version;
 * idempotent. The drop waits at most `deletionLockTimeout` for its lock. When it cannot be done —
 * an object still depends on the old version (2BP01), a lock is not granted (55P03) — the attempt
 * and its error are recorded on the pending deletion, and after `deletionMaxAttempts` of them the
 * deletion stops retrying, failing with a message that says what to do; GET /pending-deletions
 * shows it. A deletion started again later (the start-up sweep) tries once more. Outages of the
 * database itself are retried like any activity's.
 */
export function makeExecuteDeletion({ sql }: ActivityDeps) {
  return async function executeDeletion(input: { deletionId: string }): Promise<{ executed: boolean }> {
    try {
      return await sql.begin(async (tx) => {
        await tx`select set_config('lock_timeout', ${deletionLockTimeout}, true)`;
        const [d] = await tx<
          { ingestionId: string | null; schemaName: string; tableName: string; executedAt: Date | null }[]
        >`
          select ingestion_id as "ingestionId", schema_name as "schemaName", table_name as "tableName",
                 executed_at as "executedAt"
          from autoloader.pending_deletions where id = ${input.deletionId} for update`;
        if (!d || d.executedAt) return { executed: false };
        await dropIfExists(tx, { schema: d.schemaName, table: d.tableName });
        if (d.ingestionId) await discardScope(tx, d.ingestionId, asideHistoryScope(d.tableName));
        await tx`
          update autoloader.pending_deletions set executed_at = now(), failed_at = null
          where id = ${input.deletionId}`;
        log.info('old table version deleted', { table: `${d.schemaName}.${d.tableName}` });
        return { executed: true };
      });
    } catch (err) {
      if (!(err instanceof postgres.PostgresError && (err.code === '2BP01' || err.code === '55P03')))
        throw err;
      const why =
        err.code === '2BP01'
          ? `other objects depend on it (${err.detail ?? err.message}); drop them or point them elsewhere`
          : `its lock was not granted within ${deletionLockTimeout} (${err.message}); end the sessions holding it`;
      const failure = await sql.begin(async (tx) => {
        const [row] = await tx<{ attempts: number; table: string }[]>`
          update autoloader.pending_deletions set attempts = attempts + 1
          where id = ${input.deletionId}
          returning attempts, schema_name || '.' || table_name as table`;
        if (!row) return undefined;
        const gaveUp = row.attempts >= deletionMaxAttempts;
        const message = `cannot drop ${row.table}: ${why}${gaveUp ? `, then drop the table yourself; not retried after ${row.attempts} attempts` : ''}`;
        await tx`
          update autoloader.pending_deletions
          set last_error = ${message}, failed_at = case when ${gaveUp} then now() end
          where id = ${input.deletionId}`;
        return { ...row, gaveUp, message };
      });
      if (!failure) throw err;
      log.warn('old table version not deleted', {
        table: failure.table,
        attempts: failure.attempts,
        error: err.message,
      });
      if (failure.gaveUp) throw ApplicationFailure.nonRetryable(failure.message, 'DeletionBlocked');
      throw ApplicationFailure.retryable(failure.message, 'DeletionBlocked');
    }
  };
}
