import type { Command } from 'commander';
import type { CliApp, Ctx } from '../context.js';
import { CliError, EXIT_OK, type ExitCode } from '../errors.js';
import { fmtInterval, keyValues, table } from '../format.js';
import { printJson } from '../output.js';
import { resolveIngestion } from '../resolve.js';
import type { ScheduleJson } from '../types.js';

export interface ScheduleOptions {
  cron?: string;
  every?: string;
  timezone?: string;
  operation?: string;
  strategy?: string;
  paused?: boolean;
  /** The refresh schedule (seed 001's refresh_schedule) instead of the run schedule. */
  refresh?: boolean;
}

/** The run schedule's route, or the refresh schedule's. */
const schedulePath = (ingestionId: string, refresh?: boolean) =>
  `/ingestions/${ingestionId}/${refresh ? 'refresh-schedule' : 'schedule'}`;

const unitSeconds: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

/** "90", "90s", "15m", "1h30m", "1d" → seconds. */
export function parseInterval(text: string): number {
  const trimmed = text.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const parts = [...trimmed.matchAll(/(\d+)\s*([smhd])/gi)];
  const consumed = parts.map((p) => p[0]).join('');
  if (parts.length === 0 || consumed.replace(/\s/g, '') !== trimmed.replace(/\s/g, '')) {
    throw new CliError(`--every "${text}": expected seconds or a duration such as 90s, 15m, 1h30m, 1d`);
  }
  return parts.reduce((sum, p) => sum + Number(p[1]) * unitSeconds[p[2]!.toLowerCase()]!, 0);
}

/** PUT /ingestions/{id}/schedule's body from the command line: exactly one of --cron or --every. */
export function scheduleBody(opts: ScheduleOptions): Record<string, unknown> {
  if ((opts.cron === undefined) === (opts.every === undefined)) {
    throw new CliError('give exactly one of --cron <expression> or --every <interval>');
  }
  const body: Record<string, unknown> = {};
  if (opts.cron !== undefined) body.cron = opts.cron;
  else {
    const seconds = parseInterval(opts.every!);
    if (seconds < 1) throw new CliError('--every must be at least 1 second');
    body.interval_seconds = seconds;
  }
  if (opts.timezone) body.timezone = opts.timezone;
  if (opts.operation !== undefined) {
    // The API's name is full_refresh; the command is full-refresh: accept both.
    const op = opts.operation.replace('-', '_');
    if (op !== 'run' && op !== 'full_refresh') {
      throw new CliError(`--operation must be run or full-refresh, not "${opts.operation}"`);
    }
    if (opts.refresh && op !== 'full_refresh') {
      throw new CliError('the refresh schedule full-refreshes: --operation run belongs to the run schedule');
    }
    body.operation = op;
  }
  if (opts.strategy !== undefined) {
    if (opts.strategy !== 'drop' && opts.strategy !== 'swap') {
      throw new CliError(`--strategy must be drop or swap, not "${opts.strategy}"`);
    }
    body.strategy = opts.strategy;
  }
  if (opts.paused) body.paused = true;
  return body;
}

function describe(s: ScheduleJson, ingestionName: string): string {
  const when =
    s.cron !== undefined
      ? ['cron', s.cron]
      : ['every', `${fmtInterval(s.interval_seconds ?? 0)} (${s.interval_seconds} s)`];
  let text = `Schedule ${s.schedule_id} of ${ingestionName}\n${keyValues(
    [
      [when[0]!, when[1]],
      ['timezone', s.timezone],
      ['operation', s.operation],
      ...(s.operation === 'full_refresh' ? ([['strategy', s.strategy]] as [string, unknown][]) : []),
      ['paused', s.paused],
      ['next', s.next_action_times.join(', ') || '-'],
    ],
    '  ',
  )}`;
  if (s.recent_actions.length > 0) {
    text += `\nRecent actions\n${table(
      ['SCHEDULED AT', 'WORKFLOW'],
      s.recent_actions.map((a) => [a.scheduled_at, a.workflow_id]),
      '  ',
    )}`;
  }
  return text;
}

async function set(ctx: Ctx, ref: string, opts: ScheduleOptions): Promise<ExitCode> {
  const body = scheduleBody(opts);
  const ing = await resolveIngestion(ctx.api, ref);
  const { body: s } = await ctx.api.request<ScheduleJson>('PUT', schedulePath(ing.id, opts.refresh), {
    body,
  });
  if (ctx.json) printJson(ctx.io, s);
  else ctx.io.out(describe(s, ing.name));
  return EXIT_OK;
}

async function show(ctx: Ctx, ref: string, opts: { refresh?: boolean }): Promise<ExitCode> {
  const ing = await resolveIngestion(ctx.api, ref);
  const { body: s } = await ctx.api.request<ScheduleJson>('GET', schedulePath(ing.id, opts.refresh));
  if (ctx.json) printJson(ctx.io, s);
  else ctx.io.out(describe(s, ing.name));
  return EXIT_OK;
}

async function remove(ctx: Ctx, ref: string, opts: { refresh?: boolean }): Promise<ExitCode> {
  const ing = await resolveIngestion(ctx.api, ref);
  await ctx.api.request<null>('DELETE', schedulePath(ing.id, opts.refresh));
  const which = opts.refresh ? 'refresh schedule' : 'schedule';
  if (ctx.json) printJson(ctx.io, { ingestion_id: ing.id, schedule_deleted: true, refresh: !!opts.refresh });
  else ctx.io.out(`Removed the ${which} of ${ing.name} (an operation it started is not affected)\n`);
  return EXIT_OK;
}

export function registerScheduleCommands(program: Command, app: CliApp): void {
  const schedule = program.command('schedule').description("An ingestion's schedule (a Temporal Schedule)");
  schedule
    .command('set')
    .description('Create or replace the schedule')
    .argument('<ingestion>', 'ingestion id or name')
    .option('--cron <expression>', 'cron expression, e.g. "0 2 * * *"')
    .option('--every <interval>', 'an interval instead: 90s, 15m, 1h30m, 1d')
    .option('--timezone <zone>', 'IANA time zone for --cron (default UTC)')
    .option('--operation <operation>', 'run (default) or full-refresh')
    .option('--strategy <strategy>', 'full-refresh: drop (default) or swap')
    .option('--paused', 'create it paused')
    .option('--refresh', 'the refresh schedule (full refreshes, beside the run schedule)')
    .action((ref: string, opts: ScheduleOptions, cmd: Command) =>
      app.exec(cmd, (ctx) => set(ctx, ref, opts)),
    );
  schedule
    .command('show')
    .description('The schedule, its next times and recent actions')
    .argument('<ingestion>', 'ingestion id or name')
    .option('--refresh', 'the refresh schedule')
    .action((ref: string, opts: { refresh?: boolean }, cmd: Command) =>
      app.exec(cmd, (ctx) => show(ctx, ref, opts)),
    );
  schedule
    .command('delete')
    .description('Remove the schedule')
    .argument('<ingestion>', 'ingestion id or name')
    .option('--refresh', 'the refresh schedule')
    .action((ref: string, opts: { refresh?: boolean }, cmd: Command) =>
      app.exec(cmd, (ctx) => remove(ctx, ref, opts)),
    );
}
