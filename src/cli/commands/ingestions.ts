import type { Command } from 'commander';
import { confirmDestructive } from '../confirm.js';
import type { CliApp, Ctx } from '../context.js';
import { CliError, EXIT_OK, type ExitCode } from '../errors.js';
import { fmtValue, keyValues, runSummary, table } from '../format.js';
import { printJson } from '../output.js';
import { resolveConnectionId, resolveIngestion } from '../resolve.js';
import type { IngestionJson, Page, RunJson } from '../types.js';

export interface IngestionOptions {
  name: string;
  connection: string;
  destination: string;
  format: string;
  bucket?: string;
  prefix?: string;
  pattern?: string;
  since?: string;
  schemaMode?: string;
  option: string[];
  column: string[];
}

/** `--option header=false --option delimiter=;` → format_options; true/false become booleans. */
export function parseFormatOptions(pairs: string[]): Record<string, string | boolean> {
  const out: Record<string, string | boolean> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new CliError(`--option "${pair}": expected key=value`);
    const value = pair.slice(eq + 1);
    out[pair.slice(0, eq)] = value === 'true' ? true : value === 'false' ? false : value;
  }
  return out;
}

/** `--column id:bigint --column 'amount:numeric(12,2)'` → declared columns, in order. */
export function parseColumns(specs: string[]): { name: string; type: string }[] {
  return specs.map((spec) => {
    const colon = spec.indexOf(':');
    if (colon <= 0 || colon === spec.length - 1) throw new CliError(`--column "${spec}": expected name:type`);
    return { name: spec.slice(0, colon), type: spec.slice(colon + 1) };
  });
}

export function ingestionSource(opts: IngestionOptions): Record<string, unknown> {
  const source: Record<string, unknown> = { format: opts.format };
  if (opts.bucket) source.bucket = opts.bucket;
  if (opts.prefix !== undefined) source.prefix = opts.prefix;
  if (opts.pattern) source.pattern = opts.pattern;
  if (opts.since) source.since = opts.since;
  if (opts.schemaMode) source.schema_mode = opts.schemaMode;
  if (opts.option.length > 0) source.format_options = parseFormatOptions(opts.option);
  if (opts.column.length > 0) source.columns = parseColumns(opts.column);
  return source;
}

const collect = (value: string, previous: string[]) => [...previous, value];

const sourceText = (s: Record<string, unknown>) =>
  [s.bucket ? `s3://${String(s.bucket)}/` : '', String(s.prefix ?? ''), String(s.pattern ?? '')].join('');

async function create(ctx: Ctx, opts: IngestionOptions): Promise<ExitCode> {
  const source = ingestionSource(opts);
  const connectionId = await resolveConnectionId(ctx.api, opts.connection);
  const { body } = await ctx.api.request<IngestionJson>('POST', '/ingestions', {
    body: { name: opts.name, connection_id: connectionId, destination: opts.destination, source },
  });
  if (ctx.json) printJson(ctx.io, body);
  else
    ctx.io.out(
      `Created ingestion ${body.id} (${body.name} → ${body.destination}); run it: autoloader run ${body.name}\n`,
    );
  return EXIT_OK;
}

async function list(ctx: Ctx): Promise<ExitCode> {
  const { body } = await ctx.api.request<Page<IngestionJson>>('GET', '/ingestions');
  if (ctx.json) printJson(ctx.io, body);
  else if (body.items.length === 0) ctx.io.out('No ingestions yet (autoloader ingestions create --help)\n');
  else {
    ctx.io.out(
      table(
        ['ID', 'NAME', 'DESTINATION', 'FORMAT', 'STATUS', 'SOURCE'],
        body.items.map((i) => [
          i.id,
          i.name,
          i.destination,
          fmtValue(i.source.format),
          i.status,
          sourceText(i.source),
        ]),
      ),
    );
  }
  return EXIT_OK;
}

async function show(ctx: Ctx, ref: string): Promise<ExitCode> {
  const ing = await resolveIngestion(ctx.api, ref);
  const { body: runs } = await ctx.api.request<Page<RunJson>>('GET', `/ingestions/${ing.id}/runs`, {
    query: { limit: 1 },
  });
  if (ctx.json) {
    printJson(ctx.io, ing);
    return EXIT_OK;
  }
  const last = runs.items[0];
  ctx.io.out(
    `${keyValues([
      ['id', ing.id],
      ['name', ing.name],
      ['destination', ing.destination],
      ['connection', ing.connection_id],
      ['status', ing.status],
      ['created', ing.created_at],
      ['updated', ing.updated_at],
    ])}\nSource\n${keyValues(Object.entries(ing.source), '  ')}\nLast run\n  ${last ? runSummary(last) : 'none yet\n'}`,
  );
  return EXIT_OK;
}

async function remove(ctx: Ctx, ref: string, opts: { confirm?: boolean }): Promise<ExitCode> {
  const ing = await resolveIngestion(ctx.api, ref);
  await confirmDestructive(ctx.io, {
    confirmed: opts.confirm,
    command: 'ingestions delete',
    what: `Delete ingestion ${ing.name} and its run and file history (the table ${ing.destination} is kept)`,
  });
  await ctx.api.request<null>('DELETE', `/ingestions/${ing.id}`);
  // 204 has no body: scripts still get one JSON document saying what went.
  if (ctx.json) printJson(ctx.io, { id: ing.id, name: ing.name, deleted: true });
  else ctx.io.out(`Deleted ingestion ${ing.name} (${ing.id}); ${ing.destination} was kept\n`);
  return EXIT_OK;
}

export function registerIngestionCommands(program: Command, app: CliApp): void {
  const ingestions = program
    .command('ingestions')
    .description('Ingestions: a source and a destination table');
  ingestions
    .command('create')
    .description('Create an ingestion')
    .requiredOption('--name <name>', 'a name unique in your tenant')
    .requiredOption('--connection <connection>', 'connection id or name')
    .requiredOption('--destination <schema.table>', 'destination table in Postgres')
    .option('--format <format>', 'jsonl, json, csv or parquet', 'jsonl')
    .option('--bucket <bucket>', 's3: the bucket')
    .option('--prefix <prefix>', 'only keys under this prefix')
    .option('--pattern <glob>', 'glob matched against the key below the prefix')
    .option('--since <time>', 'ignore files modified before this ISO timestamp')
    .option('--schema-mode <mode>', 'add_columns, rescue or fail')
    .option(
      '--option <key=value>',
      'a format option (csv: header, delimiter, quote, escape, null_string); repeatable',
      collect,
      [],
    )
    .option('--column <name:type>', 'a declared column; repeatable, in order', collect, [])
    .action((opts: IngestionOptions, cmd: Command) => app.exec(cmd, (ctx) => create(ctx, opts)));
  ingestions
    .command('list')
    .description('List ingestions')
    .action((_opts: object, cmd: Command) => app.exec(cmd, list));
  ingestions
    .command('show')
    .description('An ingestion, its source and its last run')
    .argument('<ingestion>', 'ingestion id or name')
    .action((ref: string, _opts: object, cmd: Command) => app.exec(cmd, (ctx) => show(ctx, ref)));
  ingestions
    .command('delete')
    .description('Delete an ingestion and its history (the table is kept)')
    .argument('<ingestion>', 'ingestion id or name')
    .option('--confirm', 'confirm (else asked on a terminal, refused otherwise)')
    .action((ref: string, opts: { confirm?: boolean }, cmd: Command) =>
      app.exec(cmd, (ctx) => remove(ctx, ref, opts)),
    );
}
