import { randomBytes } from 'node:crypto';
import { log } from '@temporalio/activity';
import type postgres from 'postgres';
import type { OperationStep } from '../db/schema/index.js';
import { type CarriedOver, dropCarriedOver, SwapRefused } from '../destination/carry-over.js';
import { describeTable, swapIn, tableExists, versionedName } from '../destination/table.js';
import type { ErrorCode } from '../domain/errors.js';
import { promoteScope } from '../ledger/processed-files.js';
import { operationTypes } from '../refresh/modes.js';
import type { ActivityDeps } from './deps.js';
import { loadIngestionContext } from './ingestion-context.js';
import { asideHistoryScope, queueDeletion, setLiveHistoryAside, swapLockTimeout } from './swap.js';

/** What a rollback did, as the API answers it and the operation's `rolled_back` step records it. */
export interface RolledBack {
  /** Tells a retry of this rollback (answered from the record) from a second request (refused). */
  rollback_id: string;
  operation_id: string;
  table_name: string;
  /** The version live again, by the name it had while it waited out its grace period. */
  restored_version: string;
  /** Its pending deletion, cancelled. */
  cancelled_deletion_id: string;
  /** The version the operation had swapped in, set aside and queued for deletion; null when it was gone. */
  rolled_back_version: { table_name: string; deletion_id: string; due_at: string } | null;
  rolled_back_at: string;
  /** What the restored version took over from the live one (grants, indexes, comments…). */
  carried_over: CarriedOver;
}

export type RollbackOutcome =
  | { done: true; result: RolledBack }
  | { done: false; code: Extract<ErrorCode, 'ROLLBACK_EXPIRED' | 'NOT_ROLLBACKABLE'>; reason: string };

export interface RollbackInput {
  rollbackId: string;
  operationId: string;
  ingestionId: string;
  graceSeconds: number;
  /** Who asked, for the audit event written with the rollback. */
  subject: string;
}

/**
 * Undoes a swap full refresh within its grace period, in one transaction: the version the swap set
 * aside takes the live name again through the swap's own code (the live table's grants, indexes,
 * comments, policies and views carried over, the version's own copies dropped first), with the
 * file history kept aside with it, so the next run continues from that history; the version the
 * operation had swapped in is set aside with its history and queued for deletion after the grace
 * period; the restored version's pending deletion is removed, and the operation records a
 * `rolled_back` step. Audited in the same transaction, refusals too.
 *
 * Refused (nothing changed) when the operation is not a completed swap with a previous version,
 * was rolled back already, a later refresh changed the table, or the grace period is over. The
 * pending deletion's row lock orders this against its timer: whichever commits first wins, and the
 * other finds the row gone or executed. Idempotent: a retry after the commit answers the record.
 */
export function makeRollbackSwap({ sql }: ActivityDeps) {
  return async function rollbackSwap(input: RollbackInput): Promise<RollbackOutcome> {
    const { destination } = await loadIngestionContext(sql, input.ingestionId);
    const liveName = describeTable(destination);
    const outcome = await sql.begin(async (tx): Promise<RollbackOutcome> => {
      await tx`select set_config('lock_timeout', ${swapLockTimeout}, true)`;
      const refuse = async (code: 'ROLLBACK_EXPIRED' | 'NOT_ROLLBACKABLE', reason: string) => {
        await audit(tx, input, 'refused', { rollback_id: input.rollbackId, error_code: code, reason });
        return { done: false as const, code, reason };
      };
      const [op] = await tx<{ type: string; strategy: string; status: string; steps: OperationStep[] }[]>`
        select type, strategy, status, steps from autoloader.operations
        where id = ${input.operationId} and ingestion_id = ${input.ingestionId} for update`;
      if (!op) return refuse('NOT_ROLLBACKABLE', `operation ${input.operationId} is not this ingestion's`);
      const step = (name: string) => op.steps.find((s) => s.operation === name);

      const earlier = step('rolled_back')?.details as RolledBack | undefined;
      if (earlier?.rollback_id === input.rollbackId) return { done: true, result: earlier };
      if (earlier)
        return refuse(
          'NOT_ROLLBACKABLE',
          `operation ${input.operationId} was rolled back already, at ${earlier.rolled_back_at}`,
        );
      if (op.type !== 'full_refresh' || op.strategy !== 'swap')
        return refuse(
          'NOT_ROLLBACKABLE',
          `operation ${input.operationId} is a ${op.type} with strategy "${op.strategy}": only a full refresh with strategy "swap" keeps the previous version to go back to`,
        );
      if (op.status !== 'success')
        return refuse(
          'NOT_ROLLBACKABLE',
          `operation ${input.operationId} is ${op.status}: only a completed swap can be rolled back`,
        );
      const swapped = step('table_swapped')?.details.table_name;
      const scheduled = step('deletion_scheduled')?.details.deletion_id;
      if (swapped !== liveName)
        return refuse(
          'NOT_ROLLBACKABLE',
          `operation ${input.operationId} swapped ${String(swapped)}; the ingestion loads into ${liveName} now`,
        );
      if (typeof scheduled !== 'string')
        return refuse(
          'NOT_ROLLBACKABLE',
          `operation ${input.operationId} replaced no previous version: ${liveName} did not exist before it`,
        );

      const [d] = await tx<
        { schemaName: string; tableName: string; dueAt: Date; executedAt: Date | null; due: boolean }[]
      >`
        select schema_name as "schemaName", table_name as "tableName", due_at as "dueAt",
               executed_at as "executedAt", due_at <= now() as due
        from autoloader.pending_deletions where id = ${scheduled} for update`;
      if (!d || d.executedAt)
        return refuse(
          'ROLLBACK_EXPIRED',
          `the grace period of operation ${input.operationId} is over: the previous version of ${liveName} was deleted${d?.executedAt ? ` at ${d.executedAt.toISOString()}` : ''}`,
        );
      const old = { schema: d.schemaName, table: d.tableName };
      if (d.due)
        return refuse(
          'ROLLBACK_EXPIRED',
          `the grace period of operation ${input.operationId} ended at ${d.dueAt.toISOString()}: the previous version ${describeTable(old)} is being deleted`,
        );
      const [later] = await tx<{ id: string; type: string }[]>`
        select id, type from autoloader.operations
        where ingestion_id = ${input.ingestionId}
          and created_at > (select created_at from autoloader.operations where id = ${input.operationId})
          -- every refresh mode changes the live table: undoing an earlier swap would undo it too
          and type in ${tx([...operationTypes])}
          -- a swap that failed or was cancelled left the live table as it was
          and not (strategy = 'swap' and status in ('failed', 'cancelled'))
        order by created_at limit 1`;
      if (later)
        return refuse(
          'NOT_ROLLBACKABLE',
          `operation ${later.id} (${later.type}) changed ${liveName} after operation ${input.operationId}: only the latest refresh of a table can be rolled back`,
        );
      if (!(await tableExists(tx, old)))
        return refuse(
          'ROLLBACK_EXPIRED',
          `the previous version ${describeTable(old)} of ${liveName} no longer exists`,
        );

      const aside = versionedName(destination.table, 'old', randomBytes(4).toString('hex'));
      let restored: Awaited<ReturnType<typeof swapIn>>;
      try {
        restored = await tx.savepoint(async (sp) => {
          // With no live table to carry from (dropped by hand), the version keeps its own.
          if (await tableExists(sp, destination)) await dropCarriedOver(sp, old);
          return swapIn(sp, destination, old.table, aside);
        });
      } catch (err) {
        if (!(err instanceof SwapRefused)) throw err;
        return refuse(
          'NOT_ROLLBACKABLE',
          `the previous version ${describeTable(old)} cannot take the place of ${liveName} without breaking its readers (${err.reasons.join('; ')}); ${liveName} kept as it is`,
        );
      }
      if (restored.hadLive) await setLiveHistoryAside(tx, input.ingestionId, asideHistoryScope(aside));
      await promoteScope(tx, input.ingestionId, asideHistoryScope(old.table));
      await tx`delete from autoloader.pending_deletions where id = ${scheduled}`;
      const deletion = restored.hadLive
        ? await queueDeletion(tx, {
            ingestionId: input.ingestionId,
            operationId: input.operationId,
            schema: destination.schema,
            table: aside,
            graceSeconds: input.graceSeconds,
          })
        : null;

      const [clock] = await tx<{ now: Date }[]>`select now() as now`;
      const result: RolledBack = {
        rollback_id: input.rollbackId,
        operation_id: input.operationId,
        table_name: liveName,
        restored_version: describeTable(old),
        cancelled_deletion_id: scheduled,
        rolled_back_version: deletion && {
          table_name: describeTable({ schema: destination.schema, table: aside }),
          deletion_id: deletion.id,
          due_at: deletion.dueAt,
        },
        rolled_back_at: clock!.now.toISOString(),
        carried_over: restored.carried,
      };
      const recorded: OperationStep = {
        operation: 'rolled_back',
        status: 'success',
        timestamp: result.rolled_back_at,
        details: { ...result },
      };
      await tx`
        update autoloader.operations set steps = steps || jsonb_build_array(${tx.json(recorded as never)}::jsonb)
        where id = ${input.operationId}`;
      await audit(tx, input, 'success', { ...result });
      return { done: true, result };
    });
    if (outcome.done) log.info('swap rolled back', { ...outcome.result });
    else log.warn('rollback refused', { operationId: input.operationId, reason: outcome.reason });
    return outcome;
  };
}

/** The rollback's audit event; written once per rollback, whatever retries the activity makes. */
async function audit(
  tx: postgres.TransactionSql,
  input: RollbackInput,
  result: 'success' | 'refused',
  impact: Record<string, unknown>,
): Promise<void> {
  await tx`
    insert into autoloader.audit_events (tenant_id, subject, action, ingestion_id, operation_id, dry_run, impact, result)
    select i.tenant_id, ${input.subject}, 'rollback', i.id, ${input.operationId}, false, ${tx.json(impact as never)}, ${result}
    from autoloader.ingestions i
    where i.id = ${input.ingestionId}
      and not exists (select 1 from autoloader.audit_events
                      where action = 'rollback' and impact->>'rollback_id' = ${input.rollbackId})`;
}
