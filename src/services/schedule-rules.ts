import { CronExpressionParser } from 'cron-parser';
import { AppError } from '../domain/errors.js';

/** How often an ingestion's schedules may fire (a schedule of 1-second runs would never stop). */
export interface ScheduleFloors {
  minRunIntervalSeconds: number;
  minRefreshIntervalSeconds: number;
}

const macros = new Set(['@yearly', '@annually', '@monthly', '@weekly', '@daily', '@midnight', '@hourly']);

/**
 * Checks a cron expression before Temporal sees it: five fields (minute hour day month weekday) or a
 * macro such as @daily, valid values, and the shortest gap between two ticks over the next ticks.
 * Returns that gap in seconds.
 */
export function cronGapSeconds(cron: string, timezone: string): number {
  const text = cron.trim();
  const fields = text.split(/\s+/);
  if (!macros.has(text) && fields.length !== 5) {
    throw new AppError(
      'VALIDATION_ERROR',
      'Invalid body: cron: five fields (minute hour day month weekday) or @hourly/@daily/@weekly/@monthly/@yearly',
      {
        field: 'cron',
      },
    );
  }
  let ticks: number[];
  try {
    const expr = CronExpressionParser.parse(text, {
      tz: timezone,
      currentDate: new Date(Date.UTC(2030, 0, 1)),
    });
    ticks = Array.from({ length: 200 }, () => expr.next().getTime());
  } catch (err) {
    if (!(err instanceof Error)) throw err;
    throw new AppError('VALIDATION_ERROR', `Invalid body: cron: ${err.message}`, { field: 'cron' });
  }
  let gap = Number.POSITIVE_INFINITY;
  for (let i = 1; i < ticks.length; i++) gap = Math.min(gap, (ticks[i]! - ticks[i - 1]!) / 1000);
  return gap;
}

/** Refuses a schedule that would fire more often than its operation's floor allows. */
export function checkScheduleInterval(
  settings: { cron?: string; interval_seconds?: number; timezone: string; operation: string },
  floors: ScheduleFloors,
): void {
  const floor =
    settings.operation === 'run' ? floors.minRunIntervalSeconds : floors.minRefreshIntervalSeconds;
  const gap = settings.cron
    ? cronGapSeconds(settings.cron, settings.timezone)
    : (settings.interval_seconds ?? 0);
  if (gap < floor) {
    const field = settings.cron ? 'cron' : 'interval_seconds';
    throw new AppError(
      'VALIDATION_ERROR',
      `Invalid body: ${field}: ${settings.operation} schedules may fire at most every ${floor} s (this one: every ${gap} s)`,
      { field },
    );
  }
}
