import { Command, CommanderError } from 'commander';
import { registerConnectionCommands } from './commands/connections.js';
import { registerIngestionCommands } from './commands/ingestions.js';
import { registerOperationCommands } from './commands/operations.js';
import { registerRefreshCommands } from './commands/refresh.js';
import { registerRunCommands } from './commands/runs.js';
import { registerScheduleCommands } from './commands/schedule.js';
import { type CliApp, DEFAULT_URL, makeCtx } from './context.js';
import { ApiRequestError, describeError, EXIT_ERROR, EXIT_OK, type ExitCode } from './errors.js';
import { type Io, printJson, processIo } from './output.js';

const afterHelp = `
Environment:
  AUTOLOADER_URL     the API (default ${DEFAULT_URL}); --url overrides
  AUTOLOADER_TOKEN   bearer token; --token overrides; else .autoloader/dev-token from \`npm start\`

Exit codes:
  0  success
  1  error, or a run/operation that FAILED or was CANCELLED
  2  PARTIAL_SUCCESS: some files failed, the others loaded (with --wait)

Example:
  autoloader full-refresh users-daily-snapshot --confirm --wait
`;

export function buildProgram(app: CliApp, io: Io): Command {
  const program = new Command('autoloader')
    .description('Command-line client for the Autoloader API')
    .option('--url <url>', 'API base URL (env AUTOLOADER_URL)')
    .option('--token <token>', 'bearer token (env AUTOLOADER_TOKEN)')
    .option('--json', "print the API's JSON as is, for scripts")
    // Errors become exceptions main() turns into exit codes; nothing calls process.exit behind our back.
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) })
    .showHelpAfterError('(add --help for usage)')
    .configureHelp({ showGlobalOptions: true })
    .addHelpText('after', afterHelp);
  registerConnectionCommands(program, app);
  registerIngestionCommands(program, app);
  registerRunCommands(program, app);
  registerRefreshCommands(program, app);
  registerScheduleCommands(program, app);
  registerOperationCommands(program, app);
  return program;
}

/** Runs one command line; returns the exit code rather than exiting, so it can be driven in-process. */
export async function main(argv: string[], io: Io = processIo()): Promise<number> {
  let exitCode: ExitCode = EXIT_OK;
  const app: CliApp = {
    async exec(cmd, action) {
      exitCode = await action(makeCtx(cmd, io));
    },
  };
  try {
    await buildProgram(app, io).parseAsync(argv, { from: 'user' });
    return exitCode;
  } catch (err) {
    // Commander has printed its own message (or the help) already.
    if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT_OK : EXIT_ERROR;
    if (err instanceof ApiRequestError && argv.includes('--json')) printJson(io, err.body);
    io.err(describeError(err));
    return EXIT_ERROR;
  }
}

/** The process entry (bin/autoloader.js): wires signals and the exit code. */
export async function runCli(): Promise<void> {
  process.once('SIGINT', () => {
    // Only the watching stops: the run or operation is a Temporal workflow and goes on.
    process.stderr.write('\ninterrupted: stopped following; anything started keeps running on the server\n');
    process.exit(130);
  });
  process.exitCode = await main(process.argv.slice(2));
}
