import type { Client } from '@temporalio/client';
import type { Sql } from './db/client.js';
import type { Logger } from './lib/logger.js';
import { resumePendingDeletions } from './services/deletions.js';
import { ensureSearchAttributes } from './temporal/search-attributes.js';

/** Session advisory lock of the start-up sweep: one process does it, the others skip it. */
const startupLock = 7263515;

/**
 * Work that one process does at start-up, not every one: re-arming the timers of pending deletions
 * (a deletion already due is carried out at once). Every API and worker process calls this; the
 * first to take the lock does the sweep, the others (starting at the same moment) skip it, and
 * since re-arming is idempotent a later sweep changes nothing.
 */
export async function runStartupTasks(deps: { sql: Sql; temporal: Client; taskQueue: string; log: Logger }) {
  // Before anything starts a workflow: every start sets them (idempotent, so every process checks).
  const added = await ensureSearchAttributes(deps.temporal.connection, deps.temporal.options.namespace);
  if (added.length > 0) deps.log.info({ added }, 'Temporal search attributes registered');
  const reserved = await deps.sql.reserve();
  try {
    const [got] = await reserved<{ ok: boolean }[]>`select pg_try_advisory_lock(${startupLock}) as ok`;
    if (!got?.ok) {
      deps.log.debug('start-up sweep already running in another process');
      return;
    }
    try {
      const resumed = await resumePendingDeletions(deps);
      if (resumed > 0) deps.log.info({ pending: resumed }, 'pending deletions resumed');
    } finally {
      await reserved`select pg_advisory_unlock(${startupLock})`;
    }
  } finally {
    reserved.release();
  }
}
