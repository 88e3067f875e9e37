import { ScheduleNotFoundError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inProcessClient } from '../../src/api/in-process.js';
import { createToken } from '../../src/auth/tokens.js';
import { scheduleIds } from '../../src/temporal/ids.js';
import type { ScheduledOutcome } from '../../src/workflows/scheduled.js';
import { type Harness, jsonLines, startHarness } from '../helpers/harness.js';

/**
 * Seed 001's scheduled refresh: `PUT /ingestions/{id}` with `refresh_schedule` (or PUT
 * /refresh-schedule) gives the ingestion a second schedule beside its run schedule (the contract: at
 * most one of each), as real as the run schedule: a Temporal Schedule whose tick full-refreshes.
 */
let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

interface Detail {
  name: string;
  schedule: { schedule_id: string; operation: string; interval_seconds?: number } | null;
  refresh_schedule: { schedule_id: string; operation: string; cron?: string; strategy?: string } | null;
}

async function scheduleGone(scheduleId: string): Promise<boolean> {
  try {
    await h.client.schedule.getHandle(scheduleId).describe();
    return false;
  } catch (err) {
    if (err instanceof ScheduleNotFoundError) return true;
    throw err;
  }
}

describe('refresh schedule (seed 001 Phase 2)', () => {
  it('PUT /ingestions/{id} with refresh_schedule creates the schedule PUT /schedule would, as a second one', async () => {
    const a = await h.createIngestion({ 'a.jsonl': jsonLines(0, 10) }, {}, 'rsa');
    const b = await h.createIngestion({ 'a.jsonl': jsonLines(0, 10) }, {}, 'rsb');
    const shape = { operation: 'full_refresh', cron: '0 2 * * *' };

    // a: seed 001's shape; b: the run-schedule route with the same settings.
    const put = await h.api<Detail>('PUT', `/api/v1/ingestions/${a.id}`, { refresh_schedule: shape });
    expect(put.status).toBe(200);
    expect(put.body.refresh_schedule).toMatchObject({ schedule_id: scheduleIds.refresh(a.id), ...shape });
    expect(put.body.schedule).toBeNull();
    expect((await h.api('PUT', `/api/v1/ingestions/${b.id}/schedule`, shape)).status).toBe(200);

    const viaSeed = await h.client.schedule.getHandle(scheduleIds.refresh(a.id)).describe();
    const viaRoute = await h.client.schedule.getHandle(scheduleIds.ingestion(b.id)).describe();
    expect(viaSeed.memo).toEqual(viaRoute.memo);
    expect(viaSeed.spec).toEqual(viaRoute.spec);
    expect(viaSeed.policies).toEqual(viaRoute.policies);
    const action = (d: typeof viaSeed) => {
      if (d.action.type !== 'startWorkflow') throw new Error('not a workflow action');
      const [input] = d.action.args as [{ operation: string; strategy: string }];
      return { workflowType: d.action.workflowType, operation: input.operation, strategy: input.strategy };
    };
    expect(action(viaSeed)).toEqual(action(viaRoute));
    expect(action(viaSeed)).toEqual({
      workflowType: 'scheduledOperationWorkflow',
      operation: 'full_refresh',
      strategy: 'drop',
    });
  });

  it('keeps a run schedule and a refresh schedule side by side; GET shows both; deleting the ingestion removes both', async () => {
    const { id } = await h.createIngestion({ 'a.jsonl': jsonLines(0, 10) }, {}, 'rsboth');
    expect((await h.api('PUT', `/api/v1/ingestions/${id}/schedule`, { interval_seconds: 3600 })).status).toBe(
      200,
    );
    const set = await h.api('PUT', `/api/v1/ingestions/${id}/refresh-schedule`, {
      cron: '30 3 * * *',
      strategy: 'swap',
    });
    expect(set.status).toBe(200);

    const got = await h.api<Detail>('GET', `/api/v1/ingestions/${id}`);
    expect(got.body.schedule).toMatchObject({ schedule_id: scheduleIds.ingestion(id), operation: 'run' });
    expect(got.body.refresh_schedule).toMatchObject({
      schedule_id: scheduleIds.refresh(id),
      operation: 'full_refresh',
      cron: '30 3 * * *',
      strategy: 'swap',
    });

    // Removing one leaves the other.
    expect((await h.api('DELETE', `/api/v1/ingestions/${id}/refresh-schedule`)).status).toBe(204);
    expect((await h.api('GET', `/api/v1/ingestions/${id}/refresh-schedule`)).status).toBe(404);
    expect((await h.api<Detail>('GET', `/api/v1/ingestions/${id}`)).body.schedule).not.toBeNull();

    await h.api('PUT', `/api/v1/ingestions/${id}`, { refresh_schedule: { cron: '0 4 * * *' } });
    expect((await h.api('DELETE', `/api/v1/ingestions/${id}`)).status).toBe(204);
    expect(await scheduleGone(scheduleIds.ingestion(id))).toBe(true);
    expect(await scheduleGone(scheduleIds.refresh(id))).toBe(true);
  });

  it('merges like PATCH, removes with null, and refuses what the schedule rules refuse without changing anything', async () => {
    const { id } = await h.createIngestion({ 'a.jsonl': jsonLines(0, 10) }, {}, 'rsmerge');
    const before = (await h.api<Detail>('GET', `/api/v1/ingestions/${id}`)).body;

    // Below the refresh floor (1 h): 400, and the name sent with it is not applied either.
    const tooOften = await h.api<{ error_code: string }>('PUT', `/api/v1/ingestions/${id}`, {
      name: `${before.name}-renamed`,
      refresh_schedule: { interval_seconds: 60 },
    });
    expect(tooOften.status).toBe(400);
    expect(tooOften.body.error_code).toBe('VALIDATION_ERROR');
    const unchanged = (await h.api<Detail>('GET', `/api/v1/ingestions/${id}`)).body;
    expect(unchanged.name).toBe(before.name);
    expect(unchanged.refresh_schedule).toBeNull();

    const ok = await h.api<Detail>('PUT', `/api/v1/ingestions/${id}`, {
      name: `${before.name}-renamed`,
      refresh_schedule: { interval_seconds: 7200 },
    });
    expect(ok.status).toBe(200);
    expect(ok.body.name).toBe(`${before.name}-renamed`);
    expect(ok.body.refresh_schedule).toMatchObject({ interval_seconds: 7200, operation: 'full_refresh' });

    // Only the fields sent change: a PUT without refresh_schedule leaves it.
    const renamed = await h.api<Detail>('PUT', `/api/v1/ingestions/${id}`, { name: before.name });
    expect(renamed.body.refresh_schedule).not.toBeNull();

    const removed = await h.api<Detail>('PUT', `/api/v1/ingestions/${id}`, { refresh_schedule: null });
    expect(removed.status).toBe(200);
    expect(removed.body.refresh_schedule).toBeNull();
    expect(await scheduleGone(scheduleIds.refresh(id))).toBe(true);

    const unknown = await h.api<{ error_code: string }>('PUT', `/api/v1/ingestions/${id}`, {
      refresh_schedule: { cron: '0 2 * * *', operation: 'run' },
    });
    expect(unknown.status).toBe(400);
  });

  it('needs ingestion:refresh for a refresh schedule, not for the rest of the update', async () => {
    const { id } = await h.createIngestion({ 'a.jsonl': jsonLines(0, 10) }, {}, 'rsperm');
    const { token } = await createToken(h.db, {
      tenantId: h.tenantId,
      name: 'writer',
      subject: 'writer@example.com',
      permissions: ['ingestion:read', 'ingestion:write'],
    });
    const writer = inProcessClient(h.app, token);
    const refused = await writer<{ error_code: string; required_permission: string }>(
      'PUT',
      `/api/v1/ingestions/${id}`,
      { refresh_schedule: { cron: '0 2 * * *' } },
    );
    expect(refused.status).toBe(403);
    expect(refused.body).toMatchObject({
      error_code: 'INSUFFICIENT_PERMISSIONS',
      required_permission: 'ingestion:refresh',
    });
    expect(await scheduleGone(scheduleIds.refresh(id))).toBe(true);
    expect((await writer('PUT', `/api/v1/ingestions/${id}`, { status: 'active' })).status).toBe(200);
    expect(
      (await writer('PUT', `/api/v1/ingestions/${id}/refresh-schedule`, { cron: '0 2 * * *' })).status,
    ).toBe(403);
  });

  it('a refresh schedule’s tick full-refreshes the table', async () => {
    const { id, table } = await h.createIngestion({ 'a.jsonl': jsonLines(0, 25) }, {}, 'rstick');
    expect(await h.runAndWait(id)).toMatchObject({ status: 'SUCCESS', records_written: 25 });
    // A row no file holds: a full refresh rebuilds the table from the files, so it goes.
    await h.sql.unsafe(
      `insert into raw.${table} (id, _source_file, _run_id) values (999999, 'manual', 'manual')`,
    );
    await h.api('PUT', `/api/v1/ingestions/${id}`, { refresh_schedule: { cron: '0 2 * * *', paused: true } });

    const outcome = await tick(id);
    expect(outcome).toMatchObject({ started: true });
    const [row] = await h.sql.unsafe<{ n: number; manual: number }[]>(
      `select count(*)::int as n, count(*) filter (where id = 999999)::int as manual from raw.${table}`,
    );
    expect(row).toEqual({ n: 25, manual: 0 });
  });

  it('a refresh_if schedule full-refreshes on the ticks where its condition holds, and says why not on the others', async () => {
    const { id, table } = await h.createIngestion({ 'a.jsonl': jsonLines(0, 10) }, {}, 'rsif');
    expect(await h.runAndWait(id)).toMatchObject({ status: 'SUCCESS' });
    await h.sql.unsafe(
      `insert into raw.${table} (id, _source_file, _run_id) values (999999, 'manual', 'manual')`,
    );

    // A condition that does not parse is refused when the schedule is set, naming where.
    const bad = await h.api<{ error_code: string; field: string; position: number }>(
      'PUT',
      `/api/v1/ingestions/${id}/refresh-schedule`,
      { operation: 'refresh_if', condition: 'file_count >> 1', cron: '0 2 * * *' },
    );
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ error_code: 'VALIDATION_ERROR', field: 'condition' });
    expect(
      (
        await h.api('PUT', `/api/v1/ingestions/${id}/refresh-schedule`, {
          operation: 'refresh_if',
          cron: '0 2 * * *',
        })
      ).status,
    ).toBe(400);

    const set = (condition: string) =>
      h.api('PUT', `/api/v1/ingestions/${id}/refresh-schedule`, {
        operation: 'refresh_if',
        condition,
        cron: '0 2 * * *',
        paused: true,
      });
    const rows = async () =>
      (await h.sql.unsafe<{ n: number }[]>(`select count(*)::int as n from raw.${table}`))[0]!.n;

    expect((await set('new_file_count > 0')).status).toBe(200);
    expect(await tick(id)).toEqual({
      started: false,
      reason: expect.stringMatching(
        /^condition new_file_count > 0 is false \(file_count=1, new_file_count=0, /,
      ),
    });
    expect(await rows()).toBe(11);

    expect((await set('file_count >= 1 and table_row_count == 11')).status).toBe(200);
    expect(await tick(id)).toMatchObject({ started: true });
    expect(await rows()).toBe(10);
  });
});

const tick = (ingestionId: string) => h.tickSchedule<ScheduledOutcome>(scheduleIds.refresh(ingestionId));
