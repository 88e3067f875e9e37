import pino from 'pino';
import pretty from 'pino-pretty';

export type Logger = pino.Logger;

/** `pretty`: one readable line per entry; `json`: one JSON object per line (for log shippers). */
export type LogFormat = 'pretty' | 'json';

/**
 * Fields every worker log line carries that say nothing to a person reading a terminal (Temporal's
 * activity context: task tokens, run ids); JSON keeps them all.
 */
const noise = 'pid,hostname,taskToken,namespace,workflowRunId,isLocal,activityId,sdkComponent,taskQueue';

/**
 * A logger writing to stdout: readable lines when stdout is a terminal, JSON otherwise, unless
 * `format` says which (LOG_FORMAT).
 */
export function createLogger(level: string, name = 'autoloader', format?: LogFormat): Logger {
  const chosen = format ?? (process.stdout.isTTY ? 'pretty' : 'json');
  if (chosen === 'json') return pino({ name, level });
  return pino(
    { name, level },
    // Synchronous: a line printed just before the process exits is not lost.
    pretty({
      sync: true,
      colorize: process.stdout.isTTY,
      translateTime: 'SYS:HH:MM:ss.l',
      ignore: noise,
      singleLine: true,
    }),
  );
}
