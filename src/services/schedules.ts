import { ScheduleAlreadyRunning, ScheduleNotFoundError, ScheduleOverlapPolicy } from '@temporalio/client';
import { AppError } from '../domain/errors.js';
import type { RefreshStrategy } from '../refresh/modes.js';
import { type ScheduleSlot, scheduleIds, scheduleSlots, workflowIds } from '../temporal/ids.js';
import { searchAttributePairs } from '../temporal/search-attributes.js';
import { loadTenantPolicy } from '../tenancy/policy.js';
import { type ScheduledOperationInput, scheduledOperationWorkflow } from '../workflows/scheduled.js';
import { parseConditionField } from './conditional-refresh.js';
import type { ServiceDeps } from './deps.js';
import { checkScheduleInterval } from './schedule-rules.js';

export interface ScheduleSettings {
  cron?: string;
  interval_seconds?: number;
  timezone: string;
  /** `refresh_if` (refresh schedules): a full refresh on the ticks where `condition` holds. */
  operation: 'run' | 'full_refresh' | 'refresh_if';
  condition?: string;
  strategy: RefreshStrategy;
  paused: boolean;
}

export interface ScheduleView {
  scheduleId: string;
  ingestionId: string;
  /** The settings as the user gave them (Temporal compiles cron strings into calendars). */
  settings: Partial<ScheduleSettings>;
  paused: boolean;
  nextActionTimes: Date[];
  recentActions: { scheduledAt: Date; workflowId: string }[];
}

/** A tenant's schedules are capped by its policy (max_schedules); replacing one does not count. */
async function checkScheduleCap(
  deps: Pick<ServiceDeps, 'temporal' | 'sql'>,
  ingestion: { id: string; tenantId: string },
  slot: ScheduleSlot,
): Promise<void> {
  const policy = await loadTenantPolicy(deps.sql, ingestion.tenantId);
  const ids = await deps.sql<{ id: string }[]>`
    select id from autoloader.ingestions where tenant_id = ${ingestion.tenantId} and id <> ${ingestion.id}`;
  // The other ingestions' schedules, and this one's other slot (replacing a schedule does not count).
  const others = [
    ...ids.flatMap(({ id }) => scheduleSlots.map((s) => scheduleIds.of(id, s))),
    ...scheduleSlots.filter((s) => s !== slot).map((s) => scheduleIds.of(ingestion.id, s)),
  ];
  let count = 0;
  for (const scheduleId of others) {
    if (count >= policy.max_schedules) break;
    try {
      await deps.temporal.schedule.getHandle(scheduleId).describe();
      count++;
    } catch (err) {
      if (!(err instanceof ScheduleNotFoundError)) throw err;
    }
  }
  if (count >= policy.max_schedules) {
    throw new AppError('VALIDATION_ERROR', `This tenant may have at most ${policy.max_schedules} schedules`, {
      field: 'cron',
      help: 'Remove a schedule first, or ask the operator to raise max_schedules',
    });
  }
}

const notFound = (slot: ScheduleSlot) =>
  new AppError(
    'SCHEDULE_NOT_FOUND',
    slot === 'run' ? 'This ingestion has no schedule' : 'This ingestion has no refresh schedule',
  );

export async function getSchedule(
  deps: Pick<ServiceDeps, 'temporal'>,
  ingestionId: string,
  slot: ScheduleSlot = 'run',
): Promise<ScheduleView> {
  try {
    const d = await deps.temporal.schedule.getHandle(scheduleIds.of(ingestionId, slot)).describe();
    return {
      scheduleId: d.scheduleId,
      ingestionId,
      settings: (d.memo?.settings ?? {}) as Partial<ScheduleSettings>,
      paused: d.state.paused,
      nextActionTimes: d.info.nextActionTimes.slice(0, 3),
      recentActions: d.info.recentActions.slice(-5).map((a) => ({
        scheduledAt: a.scheduledAt,
        workflowId: a.action.workflow.workflowId,
      })),
    };
  } catch (err) {
    if (err instanceof ScheduleNotFoundError) throw notFound(slot);
    throw err;
  }
}

/** The schedule of a slot, or null when the ingestion has none there. */
export async function findSchedule(
  deps: Pick<ServiceDeps, 'temporal'>,
  ingestionId: string,
  slot: ScheduleSlot,
): Promise<ScheduleView | null> {
  try {
    return await getSchedule(deps, ingestionId, slot);
  } catch (err) {
    if (err instanceof AppError && err.code === 'SCHEDULE_NOT_FOUND') return null;
    throw err;
  }
}

/**
 * Creates or replaces the ingestion's schedule: a Temporal Schedule whose ticks start the operation
 * under the ingestion's workflow id, so a tick never overlaps a running operation (it is skipped).
 */
export async function setSchedule(
  deps: Pick<ServiceDeps, 'temporal' | 'taskQueue' | 'runDefaults' | 'schedules' | 'sql'>,
  ingestion: { id: string; name: string; tenantId: string },
  settings: ScheduleSettings,
  slot: ScheduleSlot = 'run',
): Promise<ScheduleView> {
  checkScheduleInterval(settings, deps.schedules);
  // Checked now, as POST /refresh-if checks it: a tick is no place to find a typo.
  if (settings.condition !== undefined) parseConditionField(settings.condition);
  await checkScheduleCap(deps, ingestion, slot);
  const spec = {
    ...(settings.cron
      ? { cronExpressions: [settings.cron] }
      : { intervals: [{ every: settings.interval_seconds! * 1000 }] }),
    timezone: settings.timezone,
  };
  const args: [ScheduledOperationInput] = [
    {
      ingestionId: ingestion.id,
      operation: settings.operation === 'run' ? 'run' : 'full_refresh',
      strategy: settings.strategy,
      run: deps.runDefaults,
      ...(settings.operation === 'refresh_if' && settings.condition ? { condition: settings.condition } : {}),
    },
  ];
  const id = scheduleIds.of(ingestion.id, slot);
  const options = {
    scheduleId: id,
    spec,
    action: {
      type: 'startWorkflow' as const,
      workflowType: scheduledOperationWorkflow,
      workflowId: workflowIds.scheduledTick(ingestion.id, slot),
      taskQueue: deps.taskQueue,
      args,
      typedSearchAttributes: searchAttributePairs({
        ingestionId: ingestion.id,
        tenantId: ingestion.tenantId,
        operation: 'scheduled',
        trigger: 'schedule',
      }),
      staticSummary:
        settings.operation === 'run'
          ? `scheduled run of ${ingestion.name}`
          : `scheduled full refresh of ${ingestion.name}${settings.condition ? ` if ${settings.condition}` : ''}`,
    },
    policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 minute' as const },
    state: { paused: settings.paused, note: `autoloader ingestion ${ingestion.name}` },
    memo: { settings: { ...settings, paused: undefined } },
  };
  try {
    await deps.temporal.schedule.create(options);
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
    // PUT replaces: a schedule's memo cannot be updated in place.
    await deps.temporal.schedule.getHandle(id).delete();
    await deps.temporal.schedule.create(options);
  }
  return getSchedule(deps, ingestion.id, slot);
}

export async function deleteSchedule(
  deps: Pick<ServiceDeps, 'temporal'>,
  ingestionId: string,
  slot: ScheduleSlot = 'run',
): Promise<void> {
  try {
    await deps.temporal.schedule.getHandle(scheduleIds.of(ingestionId, slot)).delete();
  } catch (err) {
    if (err instanceof ScheduleNotFoundError) throw notFound(slot);
    throw err;
  }
}

/** Removes the ingestion's schedules, if it has any (deleting the ingestion). */
export async function deleteScheduleIfAny(
  deps: Pick<ServiceDeps, 'temporal'>,
  ingestionId: string,
): Promise<void> {
  for (const slot of scheduleSlots) {
    try {
      await deps.temporal.schedule.getHandle(scheduleIds.of(ingestionId, slot)).delete();
    } catch (err) {
      if (!(err instanceof ScheduleNotFoundError)) throw err;
    }
  }
}
