import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { type ApiClient, createClient } from './client.js';
import type { ExitCode } from './errors.js';
import type { Io } from './output.js';
import { createProgressReporter, type ProgressReporter } from './progress.js';

export const DEFAULT_URL = 'http://127.0.0.1:8080';

export interface GlobalOptions {
  url?: string;
  token?: string;
  json?: boolean;
}

export interface Ctx {
  api: ApiClient;
  io: Io;
  /** --json: print the API's bodies as they are, for scripts. */
  json: boolean;
  progress(): ProgressReporter;
}

/**
 * The token: --token, then AUTOLOADER_TOKEN, then the development token `npm start` keeps in its
 * data folder, so a local `npm start` needs no export at all.
 */
function tokenFrom(opts: GlobalOptions, env: Io['env']): string | undefined {
  if (opts.token) return opts.token;
  if (env.AUTOLOADER_TOKEN) return env.AUTOLOADER_TOKEN;
  try {
    return (
      readFileSync(join(env.AUTOLOADER_DATA_DIR ?? '.autoloader', 'dev-token'), 'utf8').trim() || undefined
    );
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

export function makeCtx(cmd: Command, io: Io): Ctx {
  const opts = cmd.optsWithGlobals<GlobalOptions>();
  const api = createClient({
    baseUrl: opts.url ?? io.env.AUTOLOADER_URL ?? DEFAULT_URL,
    token: tokenFrom(opts, io.env),
  });
  return { api, io, json: opts.json === true, progress: () => createProgressReporter(io) };
}

/** What an action returns: its exit code. main() reads it back after commander has run the action. */
export type Action = (ctx: Ctx) => Promise<ExitCode>;

/** Handed to each command file: runs an action with the context built from the command's options. */
export interface CliApp {
  exec(cmd: Command, action: Action): Promise<void>;
}
