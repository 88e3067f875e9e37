import { CliError } from './errors.js';
import type { Io } from './output.js';

/**
 * Destructive commands need --confirm. A person at a terminal is asked instead; anything else
 * (a script, CI, a closed stdin) fails at once, since waiting for an answer nobody can give hangs.
 */
export async function confirmDestructive(
  io: Io,
  opts: { confirmed: boolean | undefined; command: string; what: string; dryRun?: boolean },
): Promise<void> {
  if (opts.confirmed) return;
  if (!io.interactive) {
    throw new CliError(
      `${opts.command} is destructive and needs --confirm (stdin is not a terminal, so I cannot ask)`,
      `${opts.what}. Re-run with --confirm${opts.dryRun ? ', or with --dry-run first to see the impact' : ''}.`,
    );
  }
  const answer = await io.ask(`${opts.what}.\nProceed? Type "yes" to continue: `);
  if (!/^\s*y(es)?\s*$/i.test(answer ?? ''))
    throw new CliError(`${opts.command} not confirmed; nothing was done`);
}
