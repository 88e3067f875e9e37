import { randomUUID } from 'node:crypto';
import { WorkflowFailedError } from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inProcessClient } from '../../src/api/in-process.js';
import { createToken, ensureTenant } from '../../src/auth/tokens.js';
import { workflowIds } from '../../src/temporal/ids.js';
import { type Harness, jsonLines, type RunBody, startHarness } from '../helpers/harness.js';

let h: Harness;
const roles: string[] = [];
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  for (const role of roles) {
    await h?.sql.unsafe(`drop owned by ${role} cascade`);
    await h?.sql.unsafe(`drop role ${role}`);
  }
  await h?.close();
});

interface Step {
  operation: string;
  timestamp: string;
  details: Record<string, unknown>;
}
interface Operation {
  status: string;
  rolled_back_at: string | null;
  operations: Step[];
}
interface RolledBack {
  status: string;
  operation_id: string;
  table_name: string;
  restored_version: string;
  cancelled_deletion_id: string;
  rolled_back_version: { table_name: string; deletion_id: string; due_at: string } | null;
  rolled_back_at: string;
  carried_over: { indexes: string[]; policies: string[]; grants: string[] };
}
interface ErrorBody {
  error_code: string;
  detail: string;
}

async function swapRefresh(id: string, graceSeconds: number): Promise<{ id: string; op: Operation }> {
  const res = await h.api<{ operation_id: string }>('POST', `/api/v1/ingestions/${id}/full-refresh`, {
    confirm: true,
    strategy: 'swap',
    grace_period_seconds: graceSeconds,
  });
  expect(res.status).toBe(202);
  await h.waitForIngestionIdle(id);
  const op = await h.api<Operation>('GET', `/api/v1/operations/${res.body.operation_id}`);
  expect(op.body.status).toBe('success');
  return { id: res.body.operation_id, op: op.body };
}

const rollback = <T>(operationId: string, body?: unknown) =>
  h.api<T>('POST', `/api/v1/operations/${operationId}/rollback`, body);

/** The rows of a table: how many, and which runs loaded them (a reload would show other run ids). */
const rows = async (rel: string) =>
  (
    await h.sql.unsafe<{ n: number; runs: string[] }[]>(
      `select count(*)::int as n, array_agg(distinct _run_id order by _run_id) as runs from ${rel}`,
    )
  )[0]!;

const historyIn = async (ingestionId: string, scope: string) =>
  (
    await h.sql<{ n: number }[]>`
      select count(*)::int as n from autoloader.processed_files
      where ingestion_id = ${ingestionId} and scope = ${scope}`
  )[0]!.n;

const present = async (rel: string) =>
  (await h.sql<{ present: boolean }[]>`select to_regclass(${rel}) is not null as present`)[0]!.present;

/** The table name of a qualified `schema.table`. */
const bare = (rel: string) => rel.slice(rel.indexOf('.') + 1);
/** The rolled-back version's grace: short, as a later test waits it out, yet a margin for a slow machine. */
const rollbackGraceSeconds = 5;

describe('POST /operations/{id}/rollback within the grace period', () => {
  let id: string;
  let bucket: string;
  let table: string;
  let live: string;
  let firstRun: RunBody;
  let swap: { id: string; op: Operation };
  let previous: string;
  let undone: RolledBack;
  let reader: string;
  let view: string;
  // Index names are the schema's: other test files create theirs in raw at the same time.
  const index = `by_user_${randomUUID().slice(0, 8)}`;
  const before: Record<string, unknown> = {};

  const catalog = async () => ({
    policies: await h.sql`
      select policyname, cmd, qual from pg_policies where schemaname = 'raw' and tablename = ${table}
      order by policyname`,
    indexes: await h.sql`
      select indexname, indexdef from pg_indexes where schemaname = 'raw' and tablename = ${table}
      order by indexname`,
    constraints: await h.sql`
      select conname, contype::text, pg_get_constraintdef(oid) as def from pg_constraint
      where conrelid = ${live}::regclass order by conname`,
    comment: (await h.sql`select obj_description(${live}::regclass, 'pg_class') as c`)[0]!.c,
    grant: (await h.sql`select has_table_privilege(${reader}, ${live}, 'SELECT') as g`)[0]!.g,
  });

  beforeAll(async () => {
    ({ id, bucket, table } = await h.createIngestion(
      { 'a0.jsonl': jsonLines(0, 100), 'a1.jsonl': jsonLines(100, 100) },
      {},
      'rb',
    ));
    live = `raw.${table}`;
    firstRun = await h.runAndWait(id);
    expect(firstRun.records_written).toBe(200);
    reader = `al_rb_${randomUUID().slice(0, 8)}`;
    await h.sql.unsafe(`create role ${reader}`);
    roles.push(reader);
    view = `raw.v_${randomUUID().slice(0, 8)}`;
    // What users add to the table: the swap carries it to the new version, the rollback back again.
    await h.sql.unsafe(`
      grant select on ${live} to ${reader};
      alter table ${live} add primary key (id);
      create index ${index} on ${live} ("user");
      create policy readers_see_positive on ${live} for select to ${reader} using (amount >= 0);
      comment on table ${live} is 'orders';
      create view ${view} as select id from ${live};
    `);
    Object.assign(before, await catalog());

    // The new version differs: one more file.
    await h.putObject(bucket, 'a2.jsonl', jsonLines(200, 100));
    swap = await swapRefresh(id, 3600);
    previous = swap.op.operations.find((s) => s.operation === 'deletion_scheduled')!.details
      .table_name as string;
    expect((await rows(live)).n).toBe(300);
  });

  it('keeps the replaced version’s file history aside during its grace period', async () => {
    expect(await historyIn(id, `aside:${bare(previous)}`)).toBe(2);
    expect(await historyIn(id, 'live')).toBe(3);
  });

  it('swaps the previous version back in with its file history and what users added', async () => {
    const res = await rollback<RolledBack>(swap.id, { grace_period_seconds: rollbackGraceSeconds });
    expect(res.status).toBe(200);
    undone = res.body;
    expect(undone).toMatchObject({
      status: 'success',
      operation_id: swap.id,
      table_name: live,
      restored_version: previous,
    });
    expect(undone.rolled_back_version).not.toBeNull();
    expect(undone.carried_over.indexes).toEqual(expect.arrayContaining([`${table}_pkey`, index]));

    // Exactly the old rows: the first run's 200, not a reload.
    expect(await rows(live)).toEqual({ n: 200, runs: [firstRun.id] });
    expect((await h.sql.unsafe<{ n: number }[]>(`select count(*)::int as n from ${view}`))[0]!.n).toBe(200);
    // One primary key, one user index, the policy, comment and grant: nothing lost, nothing doubled.
    expect(await catalog()).toEqual(before);
    // Its history is the live one again; the rolled-back version's waits aside with it.
    expect(await historyIn(id, 'live')).toBe(2);
    expect(await historyIn(id, `aside:${bare(previous)}`)).toBe(0);
    expect(await historyIn(id, `aside:${bare(undone.rolled_back_version!.table_name)}`)).toBe(3);
  });

  it('cancels the restored version’s deletion and queues the rolled-back version’s', async () => {
    const queued = undone.rolled_back_version!;
    const [deletion] = await h.sql<{ table: string; operationId: string; executed: boolean }[]>`
      select schema_name || '.' || table_name as "table", operation_id as "operationId",
             executed_at is not null as executed
      from autoloader.pending_deletions where id = ${queued.deletion_id}`;
    expect(deletion).toMatchObject({ table: queued.table_name, operationId: swap.id });
    const pending = await h.api<{ items: { id: string; table_name: string; operation_id: string }[] }>(
      'GET',
      '/api/v1/pending-deletions',
    );
    expect(pending.body.items.map((d) => d.id)).not.toContain(undone.cancelled_deletion_id);
    // Listed while it waits: on a machine slow enough for the grace to be over already, it ran.
    if (!deletion!.executed)
      expect(pending.body.items).toContainEqual(
        expect.objectContaining({
          id: queued.deletion_id,
          table_name: queued.table_name,
          operation_id: swap.id,
        }),
      );
    const [row] = await h.sql`
      select count(*)::int as n from autoloader.pending_deletions where id = ${undone.cancelled_deletion_id}`;
    expect(row!.n).toBe(0);
    // Its durable timer is cancelled, not left to fire on a table that is live again.
    const timer = h.client.workflow.getHandle(workflowIds.deletion(undone.cancelled_deletion_id));
    const ended = await timer.result().catch((err: unknown) => err);
    expect(ended).toBeInstanceOf(WorkflowFailedError);
    expect((ended as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
  });

  it('shows on the operation, and in the audit log, that it was rolled back', async () => {
    const op = await h.api<Operation>('GET', `/api/v1/operations/${swap.id}`);
    expect(op.body.status).toBe('success');
    expect(op.body.rolled_back_at).toBe(undone.rolled_back_at);
    expect(op.body.operations.at(-1)).toMatchObject({
      operation: 'rolled_back',
      details: { restored_version: previous, table_name: live },
    });
    const audit = await h.sql`
      select subject, result from autoloader.audit_events
      where operation_id = ${swap.id} and action = 'rollback'`;
    expect(audit).toEqual([{ subject: 'tester@example.com', result: 'success' }]);
  });

  it('refuses a second rollback of the same operation', async () => {
    const res = await rollback<ErrorBody>(swap.id);
    expect(res.status).toBe(409);
    expect(res.body.error_code).toBe('NOT_ROLLBACKABLE');
    expect(res.body.detail).toContain('rolled back already');
    expect((await rows(live)).n).toBe(200);
  });

  it('drops the rolled-back version and its history once its grace period is over', async () => {
    const deletion = undone.rolled_back_version!;
    await h.client.workflow.getHandle(workflowIds.deletion(deletion.deletion_id)).result();
    expect(await present(deletion.table_name)).toBe(false);
    expect(await historyIn(id, `aside:${bare(deletion.table_name)}`)).toBe(0);
    expect(await present(live)).toBe(true);
  });

  it('lets the next run load only what the restored history had not loaded', async () => {
    const next = await h.runAndWait(id);
    expect(next).toMatchObject({ status: 'SUCCESS', files_processed: 1, files_skipped: 2 });
    expect((await rows(live)).n).toBe(300);
  });
});

describe('POST /operations/{id}/rollback refused', () => {
  it('after the grace period: ROLLBACK_EXPIRED, the live table unchanged', async () => {
    const { id, bucket, table } = await h.createIngestion({ 'a0.jsonl': jsonLines(0, 100) }, {}, 'rbx');
    await h.runAndWait(id);
    await h.putObject(bucket, 'a1.jsonl', jsonLines(100, 100));
    const swap = await swapRefresh(id, 0);
    const deletionId = swap.op.operations.find((s) => s.operation === 'deletion_scheduled')!.details
      .deletion_id as string;
    await h.client.workflow.getHandle(workflowIds.deletion(deletionId)).result();
    const liveBefore = await rows(`raw.${table}`);

    const res = await rollback<ErrorBody>(swap.id);
    expect(res.status).toBe(409);
    expect(res.body.error_code).toBe('ROLLBACK_EXPIRED');
    expect(res.body.detail).toContain('grace period');
    expect(await rows(`raw.${table}`)).toEqual(liveBefore);
    expect(liveBefore.n).toBe(200);
    const op = await h.api<Operation>('GET', `/api/v1/operations/${swap.id}`);
    expect(op.body.rolled_back_at).toBeNull();
    const audit = await h.sql`
      select result, impact->>'error_code' as code from autoloader.audit_events
      where operation_id = ${swap.id} and action = 'rollback'`;
    expect(audit).toEqual([{ result: 'refused', code: 'ROLLBACK_EXPIRED' }]);
  });

  it('for a swap that a later refresh was run after: only the latest can be undone', async () => {
    const { id, bucket, table } = await h.createIngestion({ 'a0.jsonl': jsonLines(0, 100) }, {}, 'rbl');
    await h.runAndWait(id);
    await h.putObject(bucket, 'a1.jsonl', jsonLines(100, 100));
    const swap = await swapRefresh(id, 3600);
    await h.putObject(bucket, 'a2.jsonl', jsonLines(200, 100));
    const later = await h.api<{ operation_id: string }>('POST', `/api/v1/ingestions/${id}/fresh-start`, {
      confirm: true,
    });
    expect(later.status).toBe(202);
    await h.waitForIngestionIdle(id);
    const liveBefore = await rows(`raw.${table}`);

    const res = await rollback<ErrorBody>(swap.id);
    expect(res.status).toBe(409);
    expect(res.body.error_code).toBe('NOT_ROLLBACKABLE');
    expect(res.body.detail).toContain(later.body.operation_id);
    expect(await rows(`raw.${table}`)).toEqual(liveBefore);
  });

  it('for an operation that is not a swap, of another tenant, or while the ingestion is busy', async () => {
    const { id, bucket, table } = await h.createIngestion({ 'a0.jsonl': jsonLines(0, 50) }, {}, 'rbn');
    await h.runAndWait(id);
    const refresh = await h.api<{ operation_id: string }>('POST', `/api/v1/ingestions/${id}/full-refresh`, {
      confirm: true,
    });
    expect(refresh.status).toBe(202);
    await h.waitForIngestionIdle(id);

    const notSwap = await rollback<ErrorBody>(refresh.body.operation_id);
    expect(notSwap.status).toBe(409);
    expect(notSwap.body.error_code).toBe('NOT_ROLLBACKABLE');
    expect(notSwap.body.detail).toContain('strategy "swap"');

    const otherTenant = `tenant_${randomUUID().slice(0, 8)}`;
    await ensureTenant(h.db, otherTenant, 'other');
    const { token } = await createToken(h.db, { tenantId: otherTenant, name: 'other', subject: 'eve' });
    const foreign = await inProcessClient(h.app, token)<ErrorBody>(
      'POST',
      `/api/v1/operations/${refresh.body.operation_id}/rollback`,
    );
    expect(foreign.status).toBe(404);
    expect(foreign.body.error_code).toBe('OPERATION_NOT_FOUND');

    // A run held up on the table's lock holds the ingestion.
    await h.putObject(bucket, 'a1.jsonl', jsonLines(50, 50));
    const lock = await h.lockTable(table);
    const run = await h.api<{ id: string }>('POST', `/api/v1/ingestions/${id}/run`);
    expect(run.status).toBe(202);
    const busy = await rollback<ErrorBody & { current_run_id: string }>(refresh.body.operation_id);
    await lock.release();
    await h.waitForIngestionIdle(id);
    expect(busy.status).toBe(409);
    expect(busy.body).toMatchObject({ error_code: 'RUN_IN_PROGRESS', current_run_id: run.body.id });
  });
});
