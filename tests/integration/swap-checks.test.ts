import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inProcessClient } from '../../src/api/in-process.js';
import { workflowIds } from '../../src/temporal/ids.js';
import { type Harness, jsonLines, startHarness } from '../helpers/harness.js';

/**
 * Checks before the swap (issue 11): a swap full refresh whose checks fail waits in
 * `awaiting_approval` with what it measured, until approved (the swap goes ahead) or aborted (the
 * new version discarded, the live table kept). Real Temporal, Postgres and MinIO.
 */
let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

type Step = { operation: string; details: Record<string, unknown> };
type Operation = { id: string; status: string; error: string | null; operations: Step[] };
type Problem = { error_code: string; status?: string };

const rowCount = async (table: string) => {
  const [c] = await h.sql.unsafe<{ n: number }[]>(`select count(*)::int as n from raw.${table}`);
  return c!.n;
};
const tableExists = async (table: string) =>
  (await h.sql`select 1 from pg_tables where schemaname = 'raw' and tablename = ${table}`).length > 0;

/** An ingestion loaded with 2 files of 10 rows, then given 2 more: a refresh doubles its rows. */
async function grown() {
  const ing = await h.createIngestion(
    { 'a.jsonl': jsonLines(0, 10), 'b.jsonl': jsonLines(10, 10) },
    {},
    'chk',
  );
  expect(await h.runAndWait(ing.id)).toMatchObject({ status: 'SUCCESS', records_written: 20 });
  await h.putObject(ing.bucket, 'c.jsonl', jsonLines(20, 10));
  await h.putObject(ing.bucket, 'd.jsonl', jsonLines(30, 10));
  return ing;
}

/** The operation once it has reached `status` (it gets there by itself; bounded). */
async function reaching(operationId: string, status: string): Promise<Operation> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const op = await h.api<Operation>('GET', `/api/v1/operations/${operationId}`);
    if (op.body.status === status) return op.body;
    if (Date.now() > deadline) throw new Error(`operation ${operationId} stayed ${op.body.status}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const refreshWithChecks = async (id: string, checks: unknown, api = h.api) => {
  const res = await api<{ operation_id: string }>('POST', `/api/v1/ingestions/${id}/full-refresh`, {
    confirm: true,
    strategy: 'swap',
    checks,
  });
  expect(res.status).toBe(202);
  return res.body.operation_id;
};

describe('checks before the swap', () => {
  it('a failing check waits for approval with the figures; approve swaps the new version in', async () => {
    const ing = await grown();
    const opId = await refreshWithChecks(ing.id, { max_row_change_percent: 50 });
    const waiting = await reaching(opId, 'awaiting_approval');
    const checks = waiting.operations.find((s) => s.operation === 'checks_evaluated')!;
    expect(checks.details).toMatchObject({
      live_rows: 20,
      shadow_rows: 40,
      row_change_percent: 100,
      columns_dropped: [],
      failed: ['rows change by 100% (20 → 40), more than 50%'],
    });
    // Readers still have the old version meanwhile.
    expect(await rowCount(ing.table)).toBe(20);

    const approved = await h.api<Operation>('POST', `/api/v1/operations/${opId}/approve`, {
      reason: 'expected growth',
    });
    expect(approved.status).toBe(200);
    await h.waitForIngestionIdle(ing.id);
    const done = await h.api<Operation>('GET', `/api/v1/operations/${opId}`);
    expect(done.body.status).toBe('success');
    expect(done.body.operations.map((s) => s.operation)).toEqual(
      expect.arrayContaining(['checks_evaluated', 'swap_approved', 'table_swapped']),
    );
    expect(await rowCount(ing.table)).toBe(40);
    const [audit] = await h.sql<{ subject: string }[]>`
      select subject from autoloader.audit_events where operation_id = ${opId} and action = 'approve'`;
    expect(audit?.subject).toBe('tester@example.com');
    // Decided once: a second decision is refused.
    const again = await h.api<Problem>('POST', `/api/v1/operations/${opId}/abort`);
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({ error_code: 'NOT_AWAITING_APPROVAL', status: 'success' });
  });

  it('abort discards the new version and keeps the live table; the ingestion is free again', async () => {
    const ing = await grown();
    const opId = await refreshWithChecks(ing.id, { max_row_change_percent: 50 });
    await reaching(opId, 'awaiting_approval');
    const aborted = await h.api<Operation>('POST', `/api/v1/operations/${opId}/abort`, { reason: 'not now' });
    expect(aborted.status).toBe(200);
    await h.waitForIngestionIdle(ing.id);
    const done = await h.api<Operation>('GET', `/api/v1/operations/${opId}`);
    expect(done.body).toMatchObject({ status: 'cancelled' });
    expect(done.body.error).toContain('swap aborted by tester@example.com: not now');
    expect(await rowCount(ing.table)).toBe(20);
    expect(await tableExists(`_al_${opId}`.slice(0, 63))).toBe(false);
    // The live history is the one before the refresh: the next run loads only the two new files.
    expect(await h.runAndWait(ing.id)).toMatchObject({ status: 'SUCCESS', files_processed: 2 });
    expect(await rowCount(ing.table)).toBe(40);
  });

  it('passing checks swap at once; "always" waits, and the approval timeout aborts', async () => {
    const ing = await grown();
    const passing = await refreshWithChecks(ing.id, {
      max_row_change_percent: 150,
      allow_dropped_columns: false,
    });
    await h.waitForIngestionIdle(ing.id);
    expect((await h.api<Operation>('GET', `/api/v1/operations/${passing}`)).body.status).toBe('success');
    expect(await rowCount(ing.table)).toBe(40);

    const impatient = inProcessClient(h.makeApp({ refresh: { approvalTimeoutSeconds: 1 } }), h.token);
    const always = await refreshWithChecks(ing.id, 'always', impatient);
    await h.client.workflow.getHandle(workflowIds.ingestion(ing.id)).result();
    const ended = (await h.api<Operation>('GET', `/api/v1/operations/${always}`)).body;
    expect(ended.status).toBe('cancelled');
    expect(ended.error).toContain('not approved within 1 s');
    expect(ended.operations.find((s) => s.operation === 'checks_evaluated')?.details.failed).toEqual([
      'every swap of this refresh waits for approval ("checks": "always")',
    ]);
    expect(await rowCount(ing.table)).toBe(40);
  });

  it('refuses checks without the swap strategy, and a decision on an operation not waiting', async () => {
    const ing = await grown();
    const drop = await h.api<Problem & { field: string }>(
      'POST',
      `/api/v1/ingestions/${ing.id}/full-refresh`,
      {
        confirm: true,
        checks: 'always',
      },
    );
    expect(drop.status).toBe(400);
    expect(drop.body).toMatchObject({ error_code: 'VALIDATION_ERROR', field: 'checks' });
    const missing = await h.api<Problem>('POST', '/api/v1/operations/op_nope/approve');
    expect(missing.status).toBe(404);
  });
});
