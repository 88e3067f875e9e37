import type { Command } from 'commander';
import type { CliApp, Ctx } from '../context.js';
import { EXIT_OK, type ExitCode } from '../errors.js';
import { operationDetails, runSummary } from '../format.js';
import { printJson } from '../output.js';
import type { OperationJson } from '../types.js';
import { waitForOperation } from '../wait.js';

async function show(ctx: Ctx, id: string, opts: { wait?: boolean }): Promise<ExitCode> {
  if (!opts.wait) {
    const { body } = await ctx.api.request<OperationJson>('GET', `/operations/${encodeURIComponent(id)}`);
    if (ctx.json) printJson(ctx.io, body);
    else ctx.io.out(operationDetails(body));
    return EXIT_OK;
  }
  const followed = await waitForOperation(ctx.api, id, ctx.progress());
  if (ctx.json) printJson(ctx.io, followed.operation);
  else {
    if (followed.run) ctx.io.out(runSummary(followed.run));
    ctx.io.out(operationDetails(followed.operation));
  }
  return followed.exitCode;
}

export function registerOperationCommands(program: Command, app: CliApp): void {
  const operations = program.command('operations').description('Refresh operations and their steps');
  operations
    .command('show')
    .description("An operation's steps and state")
    .argument('<operation-id>', 'e.g. op_… from a refresh')
    .option('--wait', 'follow it (and its run) to the end (exit 0, 2 partial, 1 failed)')
    .action((id: string, opts: { wait?: boolean }, cmd: Command) =>
      app.exec(cmd, (ctx) => show(ctx, id, opts)),
    );
}
