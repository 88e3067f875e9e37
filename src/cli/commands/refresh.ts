import type { Command } from 'commander';
import { confirmDestructive } from '../confirm.js';
import type { CliApp, Ctx } from '../context.js';
import { ApiRequestError, CliError, EXIT_OK, EXIT_PARTIAL, type ExitCode } from '../errors.js';
import { dryRunPreview, fmtValue, keyValues, refreshAccepted, table } from '../format.js';
import { printJson } from '../output.js';
import { resolveConnectionId, resolveIngestion } from '../resolve.js';
import type { IngestionJson, RefreshResponseJson } from '../types.js';
import { waitForOperation } from '../wait.js';
import { printRunResult } from './runs.js';

type Mode = 'full-refresh' | 'fresh-start' | 'drop-table' | 'reprocess';

interface ModeSpec {
  title: string;
  method: 'POST' | 'DELETE';
  path: (id: string) => string;
  /** What the user is asked to agree to, naming the table. */
  what: (ing: IngestionJson) => string;
  /** Whether the operation starts a run that --wait can follow. */
  runs: boolean;
}

const modes: Record<Mode, ModeSpec> = {
  'full-refresh': {
    title: 'full refresh',
    method: 'POST',
    path: (id) => `/ingestions/${id}/full-refresh`,
    what: (i) =>
      `Full refresh of ${i.name}: drops ${i.destination}, clears its file history, reloads every file`,
    runs: true,
  },
  'fresh-start': {
    title: 'fresh start',
    method: 'POST',
    path: (id) => `/ingestions/${id}/fresh-start`,
    what: (i) => `Fresh start of ${i.name}: drops ${i.destination}, keeps the history, loads only new files`,
    runs: true,
  },
  'drop-table': {
    title: 'drop table',
    method: 'DELETE',
    path: (id) => `/ingestions/${id}/table`,
    what: (i) => `Drop table ${i.destination} of ${i.name} (the file history is kept, no run starts)`,
    runs: false,
  },
  reprocess: {
    title: 'reprocess',
    method: 'POST',
    path: (id) => `/ingestions/${id}/reprocess`,
    what: (i) =>
      `Reprocess in ${i.name}: deletes the selected files' rows from ${i.destination} and loads them again`,
    runs: true,
  },
};

export interface RefreshOptions {
  confirm?: boolean;
  dryRun?: boolean;
  wait?: boolean;
  /** commander's --no-auto-run: true unless given. */
  autoRun?: boolean;
  strategy?: string;
  gracePeriod?: string;
  pattern?: string;
  modifiedFrom?: string;
  modifiedTo?: string;
  /** A dry run's plan id: run exactly what it previewed, or be refused (PLAN_STALE). */
  plan?: string;
}

/** A date alone means its midnight UTC: the API wants an ISO timestamp with an offset. */
export function toTimestamp(value: string, flag: string): string {
  if (/^\d{4}-\d{2}-\d{2}$/.test(value)) return `${value}T00:00:00Z`;
  if (!/^\d{4}-\d{2}-\d{2}T/.test(value) || Number.isNaN(Date.parse(value))) {
    throw new CliError(`${flag}: "${value}" is not a date (YYYY-MM-DD) or ISO timestamp`);
  }
  return /(Z|[+-]\d{2}:?\d{2})$/i.test(value) ? value : `${value}Z`;
}

/** The request body for a mode, from the command line; rejects what the API would, before asking. */
export function refreshBody(mode: Mode, opts: RefreshOptions): Record<string, unknown> {
  const body: Record<string, unknown> = { confirm: true, dry_run: opts.dryRun === true };
  if (modes[mode].runs) body.auto_run = opts.autoRun !== false;
  if (opts.strategy !== undefined) {
    if (opts.strategy !== 'drop' && opts.strategy !== 'swap') {
      throw new CliError(`--strategy must be drop or swap, not "${opts.strategy}"`);
    }
    body.strategy = opts.strategy;
  }
  if (opts.gracePeriod !== undefined) {
    const seconds = Number(opts.gracePeriod);
    if (!Number.isInteger(seconds) || seconds < 0) throw new CliError('--grace-period must be whole seconds');
    body.grace_period_seconds = seconds;
  }
  if (opts.plan !== undefined) body.plan_id = opts.plan;
  if (mode === 'reprocess') {
    if (!opts.pattern && !opts.modifiedFrom && !opts.modifiedTo) {
      throw new CliError('reprocess needs a selection: --pattern and/or --modified-from/--modified-to');
    }
    if (opts.pattern) body.pattern = opts.pattern;
    if (opts.modifiedFrom) body.modified_from = toTimestamp(opts.modifiedFrom, '--modified-from');
    if (opts.modifiedTo) body.modified_to = toTimestamp(opts.modifiedTo, '--modified-to');
  }
  return body;
}

/** Quotes a shell word when it needs it (globs, spaces), so the printed command can be pasted. */
const shellWord = (w: string) => (/^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replaceAll("'", "'\\''")}'`);

/** The command line that would carry out what a dry run previewed. */
export function proceedCommand(
  mode: Mode,
  ingestionName: string,
  opts: RefreshOptions,
  planId?: string,
): string {
  const words = ['autoloader', mode, ingestionName];
  if (opts.strategy) words.push('--strategy', opts.strategy);
  if (opts.gracePeriod) words.push('--grace-period', opts.gracePeriod);
  if (opts.pattern) words.push('--pattern', opts.pattern);
  if (opts.modifiedFrom) words.push('--modified-from', opts.modifiedFrom);
  if (opts.modifiedTo) words.push('--modified-to', opts.modifiedTo);
  if (opts.autoRun === false) words.push('--no-auto-run');
  if (planId) words.push('--plan', planId);
  words.push('--confirm');
  return words.map(shellWord).join(' ');
}

/** Seed 001's request; a 500 `partial_failure` is an answer too (the operation goes on by itself). */
async function send(ctx: Ctx, spec: ModeSpec, id: string, body: Record<string, unknown>) {
  try {
    return (await ctx.api.request<RefreshResponseJson>(spec.method, spec.path(id), { body })).body;
  } catch (err) {
    if (
      err instanceof ApiRequestError &&
      err.body.error_code === 'PARTIAL_FAILURE' &&
      err.body.operation_id
    ) {
      return err.body as unknown as RefreshResponseJson;
    }
    throw err;
  }
}

async function refresh(ctx: Ctx, mode: Mode, ref: string, opts: RefreshOptions): Promise<ExitCode> {
  const spec = modes[mode];
  const body = refreshBody(mode, opts);
  const ing = await resolveIngestion(ctx.api, ref);

  if (opts.dryRun) {
    const preview = await send(ctx, spec, ing.id, body);
    if (ctx.json) printJson(ctx.io, preview);
    else
      ctx.io.out(
        dryRunPreview(
          `${spec.title} of ${ing.name}`,
          preview,
          proceedCommand(mode, ing.name, opts, preview.plan_id),
        ),
      );
    return EXIT_OK;
  }

  await confirmDestructive(ctx.io, {
    confirmed: opts.confirm,
    command: mode,
    what: spec.what(ing),
    dryRun: true,
  });
  const answer = await send(ctx, spec, ing.id, body);
  const partial = answer.status === 'partial_failure';
  if (!opts.wait || !answer.operation_id) {
    if (ctx.json) printJson(ctx.io, answer);
    else ctx.io.out(refreshAccepted(`${spec.title} of ${ing.name}`, answer));
    return partial ? EXIT_PARTIAL : EXIT_OK;
  }
  if (!ctx.json) ctx.io.err(refreshAccepted(`${spec.title} of ${ing.name}`, answer));
  const followed = await waitForOperation(ctx.api, answer.operation_id, ctx.progress());
  if (ctx.json) {
    printJson(ctx.io, followed.operation);
  } else {
    if (followed.run) printRunResult(ctx, followed.run, ing);
    ctx.io.out(`operation ${followed.operation.id}: ${followed.operation.status}\n`);
  }
  return followed.exitCode;
}

async function clearHistory(ctx: Ctx, ref: string, opts: { confirm?: boolean }): Promise<ExitCode> {
  const ing = await resolveIngestion(ctx.api, ref);
  await confirmDestructive(ctx.io, {
    confirmed: opts.confirm,
    command: 'clear-history',
    what: `Forget the file history of ${ing.name}: its next run loads every file again (${ing.destination} is not touched)`,
  });
  const { body } = await ctx.api.request<{
    files_cleared: number;
    oldest_file: string | null;
    newest_file: string | null;
  }>('DELETE', `/ingestions/${ing.id}/processed-files`, { query: { confirm: 'true' } });
  if (ctx.json) printJson(ctx.io, body);
  else {
    ctx.io.out(
      `Cleared the history of ${ing.name}: ${fmtValue(body.files_cleared)} files` +
        (body.oldest_file ? ` (${body.oldest_file} … ${body.newest_file})` : '') +
        '; the next run loads every file again\n',
    );
  }
  return EXIT_OK;
}

type CatalogOptions = {
  connection?: string;
  schema?: string;
  table?: string;
  data?: boolean;
  confirm?: boolean;
  wait?: boolean;
};

/** Seed 004's POST /refresh: schema discovery, or a data refresh of a connection or one table. */
async function refreshCatalog(ctx: Ctx, opts: CatalogOptions): Promise<ExitCode> {
  const body: Record<string, unknown> = {};
  if (opts.connection) body.connection_id = await resolveConnectionId(ctx.api, opts.connection);
  if (opts.schema) body.schema_name = opts.schema;
  if (opts.table) body.table_name = opts.table;
  if (opts.data) body.data = true;
  if (opts.confirm) body.confirm = true;
  const res = await ctx.api.request<Record<string, unknown>>('POST', '/refresh', { body });
  const operationId = typeof res.body.operation_id === 'string' ? res.body.operation_id : undefined;
  if (res.status === 202 && operationId) {
    if (!opts.wait) {
      if (ctx.json) printJson(ctx.io, res.body);
      else
        ctx.io.out(
          `Refresh running: operation ${operationId} (autoloader operations show ${operationId} --wait)\n`,
        );
      return EXIT_OK;
    }
    if (!ctx.json) ctx.io.err(`Refresh running: operation ${operationId}\n`);
    const followed = await waitForOperation(ctx.api, operationId, ctx.progress());
    if (ctx.json) printJson(ctx.io, followed.operation);
    else
      ctx.io.out(
        catalogResult(
          followed.operation.result ?? (followed.operation as unknown as Record<string, unknown>),
        ),
      );
    return followed.exitCode;
  }
  if (ctx.json) printJson(ctx.io, res.body);
  else ctx.io.out(catalogResult(res.body));
  // A connection refresh reports the tables it could not refresh: some did, some did not.
  return typeof res.body.tables_failed === 'number' && res.body.tables_failed > 0 ? EXIT_PARTIAL : EXIT_OK;
}

function catalogResult(body: Record<string, unknown>): string {
  const scalars = Object.entries(body).filter(([, v]) => v === null || typeof v !== 'object');
  let text = `Refresh done\n${keyValues(scalars, '  ')}`;
  const errs = Array.isArray(body.errors) ? (body.errors as Record<string, unknown>[]) : [];
  if (errs.length > 0) {
    text += `\nErrors\n${table(
      ['SCHEMA', 'TABLE', 'ERROR'],
      errs.map((e) => [fmtValue(e.schema_name), fmtValue(e.table_name), fmtValue(e.error)]),
      '  ',
    )}`;
  }
  return text;
}

interface RefreshIfOptions {
  condition: string;
  operation?: string;
  strategy?: string;
  dryRun?: boolean;
  confirm?: boolean;
  wait?: boolean;
}

/** Seed 001's conditional refresh: the condition's verdict and the facts, then the refresh if it held. */
async function refreshIf(ctx: Ctx, ref: string, opts: RefreshIfOptions): Promise<ExitCode> {
  const operation = (opts.operation ?? 'full-refresh').replace('-', '_');
  if (operation !== 'full_refresh' && operation !== 'fresh_start') {
    throw new CliError(`--operation must be full-refresh or fresh-start, not "${opts.operation}"`);
  }
  const body: Record<string, unknown> = {
    condition: opts.condition,
    operation,
    confirm: true,
    dry_run: opts.dryRun === true,
  };
  if (opts.strategy !== undefined) body.strategy = opts.strategy;
  const ing = await resolveIngestion(ctx.api, ref);
  if (!opts.dryRun) {
    await confirmDestructive(ctx.io, {
      confirmed: opts.confirm,
      command: 'refresh-if',
      what: `${modes[operation === 'full_refresh' ? 'full-refresh' : 'fresh-start'].what(ing)}, if ${opts.condition}`,
      dryRun: true,
    });
  }
  const { body: answer } = await ctx.api.request<{
    condition: string;
    result: boolean;
    facts: Record<string, unknown>;
    started: boolean;
    operation?: RefreshResponseJson;
  }>('POST', `/ingestions/${ing.id}/refresh-if`, { body });
  const verdict = `Condition ${answer.condition}: ${answer.result ? 'true' : 'false'}\n${keyValues(
    Object.entries(answer.facts),
    '  ',
  )}`;
  const started = answer.started && answer.operation?.operation_id;
  if (!started || !opts.wait) {
    if (ctx.json) printJson(ctx.io, answer);
    else
      ctx.io.out(
        `${verdict}${answer.started ? refreshAccepted(`${operation.replace('_', ' ')} of ${ing.name}`, answer.operation!) : answer.result ? '' : 'Nothing done\n'}`,
      );
    return EXIT_OK;
  }
  if (!ctx.json) ctx.io.err(verdict);
  const followed = await waitForOperation(ctx.api, answer.operation!.operation_id!, ctx.progress());
  if (ctx.json) printJson(ctx.io, followed.operation);
  else {
    if (followed.run) printRunResult(ctx, followed.run, ing);
    ctx.io.out(`operation ${followed.operation.id}: ${followed.operation.status}\n`);
  }
  return followed.exitCode;
}

export function registerRefreshCommands(program: Command, app: CliApp): void {
  const destructive = (mode: Mode, description: string) => {
    const c = program
      .command(mode)
      .description(description)
      .argument('<ingestion>', 'ingestion id or name')
      .option('--dry-run', 'show what would happen (files, GB, cost, duration); change nothing')
      .option('--confirm', 'confirm the destructive operation (else asked on a terminal, refused otherwise)')
      .option(
        '--plan <plan_id>',
        'run exactly what a dry run previewed (refused if the source changed since)',
      );
    if (modes[mode].runs) {
      c.option('--wait', 'follow the operation and its run to the end (exit 0, 2 partial, 1 failed)').option(
        '--no-auto-run',
        'do not start a run afterwards',
      );
    }
    return c;
  };
  const action =
    (mode: Mode) =>
    (ref: string, opts: RefreshOptions, cmd: Command): Promise<void> =>
      app.exec(cmd, (ctx) => refresh(ctx, mode, ref, opts));

  destructive('full-refresh', 'Drop the table, clear the file history and reload every file')
    .option('--strategy <strategy>', '"swap" builds the new table aside and swaps it in (no downtime)')
    .option('--grace-period <seconds>', 'swap: how long the previous version is kept')
    .action(action('full-refresh'));
  destructive('fresh-start', 'Drop the table, keep the file history, load only new files').action(
    action('fresh-start'),
  );
  destructive('drop-table', 'Drop the destination table only (idempotent)').action(action('drop-table'));
  destructive('reprocess', "Remove the selected files' rows and history, then load them again")
    .option('--pattern <glob>', 'files whose key below the prefix matches')
    .option('--modified-from <time>', 'files modified at or after (YYYY-MM-DD or ISO timestamp)')
    .option('--modified-to <time>', 'files modified before')
    .action(action('reprocess'));

  program
    .command('refresh-if')
    .description('Full refresh (or fresh start) only if a condition over the ingestion’s facts holds')
    .argument('<ingestion>', 'ingestion id or name')
    .requiredOption('--condition <expression>', 'e.g. "new_file_count > 100 and not schema_changed"')
    .option('--operation <operation>', 'full-refresh (default) or fresh-start')
    .option('--strategy <strategy>', 'full-refresh: drop (default) or swap')
    .option('--dry-run', 'evaluate the condition and preview; change nothing')
    .option('--confirm', 'confirm the refresh (else asked on a terminal, refused otherwise)')
    .option('--wait', 'if it starts, follow the operation and its run to the end')
    .action((ref: string, opts: RefreshIfOptions, cmd: Command) =>
      app.exec(cmd, (ctx) => refreshIf(ctx, ref, opts)),
    );

  program
    .command('clear-history')
    .description('Forget the file history: the next run loads every file again')
    .argument('<ingestion>', 'ingestion id or name')
    .option('--confirm', 'confirm (else asked on a terminal, refused otherwise)')
    .action((ref: string, opts: { confirm?: boolean }, cmd: Command) =>
      app.exec(cmd, (ctx) => clearHistory(ctx, ref, opts)),
    );

  program
    .command('refresh')
    .description('Re-discover schemas, or refresh cached data of a connection or table (POST /refresh)')
    .option('--connection <connection>', 'connection id or name')
    .option('--schema <schema>', 'schema name (needs --connection)')
    .option('--table <table>', 'table name (needs --connection and --schema)')
    .option('--data', 'refresh cached data, not only the schema (needs --connection)')
    .option(
      '--confirm',
      'with --data on an object-store connection: confirm the full refresh of its ingestions',
    )
    .option('--wait', 'when the refresh runs in the background, follow it to the end')
    .action((opts: CatalogOptions, cmd: Command) => app.exec(cmd, (ctx) => refreshCatalog(ctx, opts)));
}
