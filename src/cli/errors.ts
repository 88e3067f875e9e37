import type { ErrorBody } from '../api/errors.js';

export const EXIT_OK = 0;
export const EXIT_ERROR = 1;
/** Seed 001's PARTIAL_SUCCESS: some files failed, the others loaded. Scripts can tell it from a failure. */
export const EXIT_PARTIAL = 2;
export type ExitCode = typeof EXIT_OK | typeof EXIT_ERROR | typeof EXIT_PARTIAL;

/** A problem the CLI itself detected (bad arguments, a missing --confirm): printed, exit 1. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly help?: string,
  ) {
    super(message);
  }
}

/** The API answered with an error body (`{detail, error_code, help?}`, seed 001's shape). */
export class ApiRequestError extends Error {
  constructor(
    readonly status: number,
    readonly body: ErrorBody,
  ) {
    super(body.detail);
  }
}

/** The API could not be reached at all. */
export class ConnectionError extends Error {
  constructor(
    readonly baseUrl: string,
    readonly code: string | undefined,
  ) {
    super(`cannot reach the Autoloader API at ${baseUrl}`);
  }
}

/** Fields of an error body worth showing besides detail/help (e.g. current_run_id, field). */
const shownExtras = ['field', 'current_run_id', 'operation_id', 'retry_after_seconds', 'request_id'] as const;

/** The readable stderr text for any error the CLI ends with. */
export function describeError(err: unknown): string {
  if (err instanceof ApiRequestError) {
    const lines = [`error: ${err.body.detail} (${err.body.error_code}, HTTP ${err.status})`];
    for (const key of shownExtras) {
      const value = err.body[key];
      if (value !== undefined && value !== null) lines.push(`  ${key}: ${String(value)}`);
    }
    if (err.body.help) lines.push(`  help: ${err.body.help}`);
    return `${lines.join('\n')}\n`;
  }
  if (err instanceof ConnectionError) {
    const hint =
      err.code === 'ECONNREFUSED'
        ? 'connection refused — is `npm start` running?'
        : `${err.code ?? 'network error'} — check the address and that the service is up`;
    return `error: ${err.message}: ${hint}\n  help: set AUTOLOADER_URL or --url to point at another server\n`;
  }
  if (err instanceof CliError) {
    return `error: ${err.message}\n${err.help ? `  help: ${err.help}\n` : ''}`;
  }
  return `error: ${err instanceof Error ? err.message : String(err)}\n`;
}
