/**
 * The one error class of the service's own making: a code from the contract's list (and a few of
 * ours), a message for people, and code-specific fields. Use cases throw it; the API maps each code
 * to its HTTP status in one place (api/errors.ts). Nothing here knows about HTTP.
 */
export const errorCodes = [
  'VALIDATION_ERROR',
  'MALFORMED_BODY',
  'CONFIRMATION_REQUIRED',
  'DRY_RUN_REQUIRED',
  'PATH_NOT_ALLOWED',
  'ENDPOINT_NOT_ALLOWED',
  'SECRET_NOT_ALLOWED',
  'UNAUTHORIZED',
  'INSUFFICIENT_PERMISSIONS',
  'NOT_FOUND',
  'INGESTION_NOT_FOUND',
  'CONNECTION_NOT_FOUND',
  'TABLE_NOT_FOUND',
  'RUN_NOT_FOUND',
  'OPERATION_NOT_FOUND',
  'SCHEDULE_NOT_FOUND',
  'RUN_IN_PROGRESS',
  'RUN_NOT_RUNNING',
  'NAME_TAKEN',
  'INGESTION_EXISTS',
  'CONNECTION_EXISTS',
  'CONNECTION_IN_USE',
  'DESTINATION_UNAVAILABLE',
  'DEPENDENT_OBJECTS',
  'PLAN_STALE',
  'ROLLBACK_EXPIRED',
  'NOT_ROLLBACKABLE',
  'NOT_AWAITING_APPROVAL',
  'BODY_TOO_LARGE',
  'UNSUPPORTED_MEDIA_TYPE',
  'RATE_LIMITED',
  'PARTIAL_FAILURE',
  'INTERNAL_ERROR',
  'SERVICE_UNAVAILABLE',
] as const;
export type ErrorCode = (typeof errorCodes)[number];

export interface ErrorExtra {
  help?: string;
  /** The request field at fault (VALIDATION_ERROR and friends). */
  field?: string;
  /** RUN_IN_PROGRESS: the run or operation holding the ingestion. */
  current_run_id?: string | null;
  /** RATE_LIMITED: when to try again. */
  retry_after_seconds?: number;
  [k: string]: unknown;
}

export class AppError extends Error {
  override name = 'AppError';
  constructor(
    readonly code: ErrorCode,
    detail: string,
    readonly extra: ErrorExtra = {},
  ) {
    super(detail);
  }
}

export const errors = {
  ingestionNotFound: () => new AppError('INGESTION_NOT_FOUND', 'Ingestion not found'),
  connectionNotFound: () => new AppError('CONNECTION_NOT_FOUND', 'Connection not found'),
  runNotFound: () => new AppError('RUN_NOT_FOUND', 'Run not found'),
  operationNotFound: () => new AppError('OPERATION_NOT_FOUND', 'Operation not found'),
  runInProgress: (
    currentRunId: string | undefined,
    detail = 'Another operation is running on this ingestion',
  ) =>
    new AppError('RUN_IN_PROGRESS', detail, {
      current_run_id: currentRunId ?? null,
      help: 'Wait for the current run to complete or cancel it first',
    }),
  /** Pause, resume and throttle act only on a run that is loading (RUNNING or PAUSED). */
  runNotRunning: (runId: string, status: string) =>
    new AppError(
      'RUN_NOT_RUNNING',
      `Run ${runId} is ${status}: only a running or paused run can be controlled`,
      {
        status,
      },
    ),
  confirmationRequired: () =>
    new AppError('CONFIRMATION_REQUIRED', 'Confirmation required. Set confirm=true to proceed.', {
      help: 'This operation is destructive. Explicitly set confirm=true to proceed.',
    }),
  validation: (field: string, message: string, where: 'body' | 'query' | 'path' = 'body') =>
    new AppError('VALIDATION_ERROR', `Invalid ${where}: ${field}: ${message}`, { field }),
  insufficientPermissions: (permission: string) =>
    new AppError('INSUFFICIENT_PERMISSIONS', `This token lacks the ${permission} permission`, {
      help: `Ask an administrator for a token with ${permission}`,
      required_permission: permission,
    }),
};
