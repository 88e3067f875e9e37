import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scheduleIds } from '../../src/temporal/ids.js';
import type { ScheduledOutcome } from '../../src/workflows/scheduled.js';
import { type Harness, jsonLines, type RunBody, startHarness } from '../helpers/harness.js';

let h: Harness;
/**
 * A short grace period, a rate limit of one, and a cost model under which only the larger source
 * below counts as a large operation: the scheduled refreshes must follow all three.
 */
const refresh = { swapGraceSeconds: 7, rateLimitPerHour: 1, costPerGbUsd: 1000, largeOperationUsd: 0.1 };
beforeAll(async () => {
  h = await startHarness({ refresh });
});
afterAll(async () => {
  await h?.close();
});

const ingestion = () => h.createIngestion({ 'a.jsonl': jsonLines(0, 50) }, {}, 'sch');

const tick = (ingestionId: string) => h.tickSchedule<ScheduledOutcome>(scheduleIds.ingestion(ingestionId));

describe('schedules', () => {
  it('creates a Temporal Schedule whose tick runs the ingestion and lists the run', async () => {
    const { id } = await ingestion();
    const put = await h.api<{
      interval_seconds: number;
      operation: string;
      paused: boolean;
      schedule_id: string;
    }>('PUT', `/api/v1/ingestions/${id}/schedule`, {
      interval_seconds: 3600,
      operation: 'run',
      paused: true,
    });
    expect(put.status).toBe(200);
    expect(put.body).toMatchObject({
      interval_seconds: 3600,
      operation: 'run',
      paused: true,
      schedule_id: scheduleIds.ingestion(id),
    });

    const outcome = await tick(id);
    expect(outcome.started).toBe(true);
    const runs = await h.api<{ items: (RunBody & { trigger: string })[] }>(
      'GET',
      `/api/v1/ingestions/${id}/runs`,
    );
    expect(runs.body.items).toHaveLength(1);
    expect(runs.body.items[0]).toMatchObject({ trigger: 'schedule', status: 'SUCCESS', records_written: 50 });

    const got = await h.api('GET', `/api/v1/ingestions/${id}/schedule`);
    expect(got.status).toBe(200);
    expect((await h.api('DELETE', `/api/v1/ingestions/${id}/schedule`)).status).toBe(204);
    expect((await h.api('GET', `/api/v1/ingestions/${id}/schedule`)).status).toBe(404);
  });

  it('skips a tick while another operation runs on the ingestion', async () => {
    const { id, table } = await ingestion();
    // Hold a manual run mid-load with a lock on its destination, so it is certainly running.
    const lock = await h.holdTableLock(table);
    const manual = await h.api<{ id: string }>('POST', `/api/v1/ingestions/${id}/run`);
    expect(manual.status).toBe(202);
    await h.api('PUT', `/api/v1/ingestions/${id}/schedule`, {
      cron: '0 2 * * *',
      timezone: 'Europe/Paris',
      paused: true,
    });

    const outcome = await tick(id);
    expect(outcome).toEqual({ started: false, reason: 'another operation is running on this ingestion' });

    await lock.release();
    await h.waitForIngestionIdle(id);
    const runs = await h.api<{ items: { id: string }[] }>('GET', `/api/v1/ingestions/${id}/runs`);
    expect(runs.body.items.map((r) => r.id)).toEqual([manual.body.id]);
    await h.api('DELETE', `/api/v1/ingestions/${id}/schedule`);
  });

  it('refuses a body with both or neither of cron and interval', async () => {
    const { id } = await ingestion();
    const both = await h.api('PUT', `/api/v1/ingestions/${id}/schedule`, {
      cron: '* * * * *',
      interval_seconds: 60,
    });
    expect(both.status).toBe(400);
    const none = await h.api('PUT', `/api/v1/ingestions/${id}/schedule`, { operation: 'run' });
    expect(none.status).toBe(400);
    const tz = await h.api('PUT', `/api/v1/ingestions/${id}/schedule`, {
      interval_seconds: 60,
      timezone: 'Mars/Olympus',
    });
    expect(tz.body).toMatchObject({ error_code: 'VALIDATION_ERROR', field: 'timezone' });
  });

  it('does not run a paused ingestion; runs it again once it is active', async () => {
    const { id } = await ingestion();
    expect((await h.api('PATCH', `/api/v1/ingestions/${id}`, { status: 'paused' })).status).toBe(200);
    await h.api('PUT', `/api/v1/ingestions/${id}/schedule`, { interval_seconds: 3600, paused: true });
    expect(await tick(id)).toEqual({ started: false, reason: 'the ingestion is paused' });
    const none = await h.api<{ items: unknown[] }>('GET', `/api/v1/ingestions/${id}/runs`);
    expect(none.body.items).toEqual([]);

    expect((await h.api('PATCH', `/api/v1/ingestions/${id}`, { status: 'active' })).status).toBe(200);
    expect(await tick(id)).toMatchObject({ started: true });
    await h.api('DELETE', `/api/v1/ingestions/${id}/schedule`);
  });

  it('a scheduled full refresh keeps the configured grace period and counts against the rate limit', async () => {
    const { id } = await ingestion();
    expect(await h.runAndWait(id)).toMatchObject({ status: 'SUCCESS' });
    await h.api('PUT', `/api/v1/ingestions/${id}/schedule`, {
      interval_seconds: 3600,
      operation: 'full_refresh',
      strategy: 'swap',
      paused: true,
    });
    const outcome = await tick(id);
    expect(outcome).toMatchObject({ started: true });
    const op = await h.api<{
      status: string;
      operations: { operation: string; timestamp: string; details: Record<string, unknown> }[];
    }>('GET', `/api/v1/operations/${(outcome as { operationId: string }).operationId}`);
    expect(op.body.status).toBe('success');
    const swapped = op.body.operations.find((s) => s.operation === 'table_swapped')!;
    const deletion = op.body.operations.find((s) => s.operation === 'deletion_scheduled')!;
    const graceMs = Date.parse(String(deletion.details.due_at)) - Date.parse(swapped.timestamp);
    // Set when the swap commits: the configured 7 s, not a fixed 60 s.
    expect(graceMs).toBeGreaterThan(5_000);
    expect(graceMs).toBeLessThan(20_000);

    // The limit is one full refresh an hour: the next tick is refused, and says why.
    const second = await tick(id);
    expect(second).toEqual({
      started: false,
      reason: "at most 1 full refreshes per hour: the schedule's limit is reached",
    });
    await h.api('DELETE', `/api/v1/ingestions/${id}/schedule`);
  });

  it('a scheduled full refresh estimated above the large-operation threshold is not started', async () => {
    // ~1 MB at $1000/GB: about $1, above the $0.10 threshold.
    const { id, table } = await h.createIngestion({ 'big.jsonl': jsonLines(0, 8_000) }, {}, 'schbig');
    expect(await h.runAndWait(id)).toMatchObject({ status: 'SUCCESS' });
    await h.api('PUT', `/api/v1/ingestions/${id}/schedule`, {
      interval_seconds: 3600,
      operation: 'full_refresh',
      paused: true,
    });
    const outcome = await tick(id);
    expect(outcome).toMatchObject({ started: false });
    expect((outcome as { reason: string }).reason).toMatch(
      /^estimated at \$\d+\.\d\d, above the large-operation threshold \(\$0\.1\): run it by hand after a dry run$/,
    );
    // Nothing was touched, and the refusal is in the audit log.
    const [rows] = await h.sql.unsafe(`select count(*)::int as n from raw.${table}`);
    expect(rows).toEqual({ n: 8_000 });
    const [audit] = await h.sql<{ result: string }[]>`
      select result from autoloader.audit_events where ingestion_id = ${id} and subject = 'schedule'`;
    expect(audit).toEqual({ result: 'skipped' });
    await h.api('DELETE', `/api/v1/ingestions/${id}/schedule`);
  });
});
