import type { ActivityOptions } from '@temporalio/workflow';

/**
 * Activity options by timeout profile. Transient failures (Postgres or the store unreachable) are
 * retried without a cap on attempts: the run waits out an outage instead of failing. Failures that
 * retrying cannot fix are thrown as non-retryable by the activities.
 */
const retry = {
  initialInterval: '1s',
  backoffCoefficient: 2,
  maximumInterval: '30s',
  nonRetryableErrorTypes: ['SourceConfigError', 'IngestionNotFound', 'RunNotFound'],
};

/** Bookkeeping against Postgres: quick, small. */
export const shortActivity: ActivityOptions = { startToCloseTimeout: '1 minute', retry };

/**
 * Listing and loading: long, heartbeating. A dead worker is detected by the heartbeat timeout, then
 * the retry resumes from the state committed in Postgres.
 */
export const longActivity: ActivityOptions = {
  startToCloseTimeout: '6 hours',
  heartbeatTimeout: '30 seconds',
  retry,
};
