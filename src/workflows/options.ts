import { ActivityCancellationType, type ActivityOptions } from '@temporalio/workflow';

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
 * The swap: one transaction that builds the users' indexes on the new version before it takes the
 * live table's lock, so it may take as long as those builds (minutes on a large table). It does
 * not heartbeat; a lost worker is noticed at the timeout and the swap, idempotent, is retried.
 */
export const swapActivity: ActivityOptions = { startToCloseTimeout: '2 hours', retry };

/**
 * Listing and loading: long, heartbeating every 2 s while they make progress. A dead worker is
 * noticed within the heartbeat timeout (seconds, not half a minute), then the retry resumes from
 * the state committed in Postgres. A cancelled run waits for its activities to stop — a file being
 * loaded rolls back — before it records CANCELLED, so nothing loads under it afterwards.
 */
export const longActivity: ActivityOptions = {
  startToCloseTimeout: '6 hours',
  heartbeatTimeout: '10 seconds',
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  retry,
};
