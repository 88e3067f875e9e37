import type { Logger } from './logger.js';

/** postgres.js' errors for a query that died with its connection: the server restarted, the network dropped. */
const connectionLossCodes = new Set(['CONNECTION_CLOSED', 'CONNECTION_ENDED', 'CONNECTION_DESTROYED']);

export function isConnectionLoss(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && connectionLossCodes.has(code);
}

/**
 * A rejection nobody handles still ends the process, as Node's default does, with one exception: a
 * query that died with its Postgres connection. Whoever sent it is not waiting for it (that is what
 * unhandled means), the load it belonged to fails or retries on its own, and ending the worker for
 * it turns a Postgres restart into a worker crash (seen once in the fault loop: a restart of
 * Postgres with nine files in flight, a rejected query that no code path owned). Logged instead.
 */
export function surviveConnectionLoss(log: Logger): void {
  process.on('unhandledRejection', (reason) => {
    if (isConnectionLoss(reason)) {
      log.warn({ err: reason }, 'a query lost with its Postgres connection had no one waiting for it');
      return;
    }
    // As without this listener: the process ends with the rejection as an uncaught exception.
    throw reason;
  });
}
