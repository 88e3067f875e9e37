import type { Command } from 'commander';
import type { CliApp, Ctx } from '../context.js';
import { EXIT_OK, type ExitCode } from '../errors.js';
import { fmtBytes, fmtDurationMs, fmtInt, runSummary, table } from '../format.js';
import { runExitCode } from '../outcome.js';
import { printJson } from '../output.js';
import { resolveIngestion } from '../resolve.js';
import type { IngestionJson, Page, ProcessedFileJson, RunJson, SchemaJson } from '../types.js';
import { followRun } from '../wait.js';

/** The finished run on stdout, with where to look next when files failed. */
export function printRunResult(ctx: Ctx, run: RunJson, ingestion: Pick<IngestionJson, 'name'>): void {
  ctx.io.out(runSummary(run));
  if (run.files_failed > 0) {
    ctx.io.out(`  failed files: autoloader files ${ingestion.name} --status FAILED\n`);
  }
}

async function runIngestion(ctx: Ctx, ref: string, opts: { wait?: boolean }): Promise<ExitCode> {
  const ing = await resolveIngestion(ctx.api, ref);
  const { body: started } = await ctx.api.request<RunJson>('POST', `/ingestions/${ing.id}/run`);
  if (!opts.wait) {
    if (ctx.json) printJson(ctx.io, started);
    else
      ctx.io.out(
        `Started run ${started.id} of ${ing.name} into ${ing.destination} (follow it with --wait)\n`,
      );
    return EXIT_OK;
  }
  if (!ctx.json) ctx.io.err(`Started run ${started.id} of ${ing.name} into ${ing.destination}\n`);
  const run = await followRun(ctx.api, started.id, ctx.progress());
  if (ctx.json) printJson(ctx.io, run);
  else printRunResult(ctx, run, ing);
  return runExitCode(run.status);
}

const pageHint = (next: string | null | undefined) => (next ? `(more: --cursor ${next})\n` : '');

async function listRuns(ctx: Ctx, ref: string, opts: { limit: string; cursor?: string }): Promise<ExitCode> {
  const ing = await resolveIngestion(ctx.api, ref);
  const { body } = await ctx.api.request<Page<RunJson>>('GET', `/ingestions/${ing.id}/runs`, {
    query: { limit: opts.limit, cursor: opts.cursor },
  });
  if (ctx.json) {
    printJson(ctx.io, body);
    return EXIT_OK;
  }
  if (body.items.length === 0) {
    ctx.io.out(`No runs yet for ${ing.name}\n`);
    return EXIT_OK;
  }
  ctx.io.out(
    table(
      ['RUN', 'STATUS', 'TRIGGER', 'STARTED', 'DURATION', 'LOADED', 'FAILED', 'SKIPPED', 'ROWS'],
      body.items.map((r) => [
        r.id,
        r.status,
        r.trigger,
        r.started_at,
        fmtDurationMs(r.duration_ms),
        fmtInt(r.progress?.files_done ?? r.files_processed),
        fmtInt(r.progress?.files_failed ?? r.files_failed),
        fmtInt(r.files_skipped),
        fmtInt(r.progress?.records_written ?? r.records_written),
      ]),
    ) + pageHint(body.next_cursor),
  );
  return EXIT_OK;
}

async function listFiles(
  ctx: Ctx,
  ref: string,
  opts: { status?: string; limit: string; cursor?: string },
): Promise<ExitCode> {
  const ing = await resolveIngestion(ctx.api, ref);
  const { body } = await ctx.api.request<Page<ProcessedFileJson>>(
    'GET',
    `/ingestions/${ing.id}/processed-files`,
    {
      query: { status: opts.status?.toUpperCase(), limit: opts.limit, cursor: opts.cursor },
    },
  );
  if (ctx.json) {
    printJson(ctx.io, body);
    return EXIT_OK;
  }
  if (body.items.length === 0) {
    ctx.io.out(`No files${opts.status ? ` with status ${opts.status.toUpperCase()}` : ''} for ${ing.name}\n`);
    return EXIT_OK;
  }
  let text = table(
    ['STATUS', 'ROWS', 'SIZE', 'RETRIES', 'SCHEMA', 'PROCESSED', 'FILE'],
    body.items.map((f) => [
      f.status,
      fmtInt(f.records_ingested),
      fmtBytes(f.file_size_bytes),
      String(f.retry_count),
      f.schema_version === null ? '-' : `v${f.schema_version}`,
      f.processed_at ?? '-',
      f.file_path,
    ]),
  );
  // Errors are long and multi-part: below the table, one block per file, in full.
  const failed = body.items.filter((f) => f.error_message);
  if (failed.length > 0) {
    text += `\nErrors\n${failed
      .map((f) => `  ${f.file_path}\n    ${f.error_type ? `${f.error_type}: ` : ''}${f.error_message}\n`)
      .join('')}`;
  }
  ctx.io.out(text + pageHint(body.next_cursor));
  return EXIT_OK;
}

async function showSchema(ctx: Ctx, ref: string): Promise<ExitCode> {
  const ing = await resolveIngestion(ctx.api, ref);
  const { body } = await ctx.api.request<SchemaJson>('GET', `/ingestions/${ing.id}/schema`);
  if (ctx.json) {
    printJson(ctx.io, body);
    return EXIT_OK;
  }
  let text = `${body.destination}  schema_mode ${body.schema_mode}, ${
    body.current_version === null ? 'no file loaded yet' : `version ${body.current_version}`
  }\n`;
  if (body.declared_columns) {
    text += `\nDeclared columns\n${table(
      ['NAME', 'TYPE'],
      body.declared_columns.map((c) => [c.name, c.type]),
      '  ',
    )}`;
  }
  const current = body.versions.at(-1);
  if (current) {
    text += `\nColumns (version ${current.version})\n${table(
      ['NAME', 'TYPE'],
      current.columns.map((c) => [c.name, c.type]),
      '  ',
    )}`;
    text += `\nHistory\n${table(
      ['VERSION', 'FILES', 'CREATED', 'ADDED', 'FIRST FILE'],
      body.versions.map((v) => [
        `v${v.version}`,
        fmtInt(v.files),
        v.created_at,
        v.added.map((c) => `${c.name} ${c.type}`).join(', ') || '-',
        v.first_file,
      ]),
      '  ',
    )}`;
  }
  ctx.io.out(text);
  return EXIT_OK;
}

export function registerRunCommands(program: Command, app: CliApp): void {
  program
    .command('run')
    .description('Start a run: load new and changed files')
    .argument('<ingestion>', 'ingestion id or name')
    .option('--wait', 'follow the run to its end (exit 0 SUCCESS, 2 PARTIAL_SUCCESS, 1 FAILED/CANCELLED)')
    .action((ref: string, opts: { wait?: boolean }, cmd: Command) =>
      app.exec(cmd, (ctx) => runIngestion(ctx, ref, opts)),
    );

  program
    .command('runs')
    .description('List the runs of an ingestion, newest first')
    .argument('<ingestion>', 'ingestion id or name')
    .option('--limit <n>', 'runs per page', '20')
    .option('--cursor <run-id>', 'continue after this run (from the previous page)')
    .action((ref: string, opts: { limit: string; cursor?: string }, cmd: Command) =>
      app.exec(cmd, (ctx) => listRuns(ctx, ref, opts)),
    );

  program
    .command('files')
    .description("List an ingestion's file history, with each failed file's error")
    .argument('<ingestion>', 'ingestion id or name')
    .option('--status <status>', 'DISCOVERED, PROCESSING, SUCCESS, FAILED or SKIPPED')
    .option('--limit <n>', 'files per page', '100')
    .option('--cursor <cursor>', 'next page (from the previous page)')
    .action((ref: string, opts: { status?: string; limit: string; cursor?: string }, cmd: Command) =>
      app.exec(cmd, (ctx) => listFiles(ctx, ref, opts)),
    );

  program
    .command('schema')
    .description("An ingestion's columns and schema history")
    .argument('<ingestion>', 'ingestion id or name')
    .action((ref: string, _opts: object, cmd: Command) => app.exec(cmd, (ctx) => showSchema(ctx, ref)));
}
