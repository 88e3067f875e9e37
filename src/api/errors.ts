import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError } from '@temporalio/client';
import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import postgres from 'postgres';
import type { ZodError } from 'zod';
import { AppError, type ErrorCode, errors } from '../domain/errors.js';
import { newId } from '../lib/ids.js';
import type { Logger } from '../lib/logger.js';

/** Seed 001's error body: `{detail, error_code, help?}` plus code-specific fields (e.g. current_run_id). */
export interface ErrorBody {
  detail: string;
  error_code: string;
  help?: string;
  [extra: string]: unknown;
}

/** Each error code's HTTP status: the only place the two meet. */
export const statusOf: Record<ErrorCode, ContentfulStatusCode> = {
  VALIDATION_ERROR: 400,
  MALFORMED_BODY: 400,
  CONFIRMATION_REQUIRED: 400,
  DRY_RUN_REQUIRED: 400,
  PATH_NOT_ALLOWED: 400,
  ENDPOINT_NOT_ALLOWED: 400,
  SECRET_NOT_ALLOWED: 400,
  UNAUTHORIZED: 401,
  INSUFFICIENT_PERMISSIONS: 403,
  NOT_FOUND: 404,
  INGESTION_NOT_FOUND: 404,
  CONNECTION_NOT_FOUND: 404,
  TABLE_NOT_FOUND: 404,
  RUN_NOT_FOUND: 404,
  OPERATION_NOT_FOUND: 404,
  SCHEDULE_NOT_FOUND: 404,
  RUN_IN_PROGRESS: 409,
  RUN_NOT_RUNNING: 409,
  NAME_TAKEN: 409,
  INGESTION_EXISTS: 409,
  CONNECTION_EXISTS: 409,
  CONNECTION_IN_USE: 409,
  DESTINATION_UNAVAILABLE: 409,
  DEPENDENT_OBJECTS: 409,
  PLAN_STALE: 409,
  ROLLBACK_EXPIRED: 409,
  NOT_ROLLBACKABLE: 409,
  NOT_AWAITING_APPROVAL: 409,
  BODY_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  RATE_LIMITED: 429,
  PARTIAL_FAILURE: 500,
  INTERNAL_ERROR: 500,
  SERVICE_UNAVAILABLE: 503,
};

export function errorBody(err: AppError): ErrorBody {
  return { detail: err.message, error_code: err.code, ...err.extra };
}

/** Headers some codes carry besides their body. */
function headersOf(err: AppError): Record<string, string> {
  const h: Record<string, string> = {};
  if (typeof err.extra.current_run_id === 'string') h['X-Current-Run-ID'] = err.extra.current_run_id;
  if (typeof err.extra.retry_after_seconds === 'number')
    h['Retry-After'] = String(err.extra.retry_after_seconds);
  return h;
}

/** The field an issue is about; for unknown fields, the first unknown one (so a typo is named). */
function fieldOf(issue: ZodError['issues'][number]): string {
  const path = issue.path.map(String);
  if (issue.code === 'unrecognized_keys' && issue.keys[0]) path.push(issue.keys[0]);
  return path.join('.');
}

export function validationError(err: ZodError, where: 'body' | 'query' | 'path'): AppError {
  const first = err.issues[0];
  const field = (first && fieldOf(first)) || where;
  return new AppError('VALIDATION_ERROR', `Invalid ${where}: ${field}: ${first?.message ?? 'invalid'}`, {
    field,
    errors: err.issues.map((i) => ({ field: fieldOf(i), message: i.message })),
  });
}

function isUnavailable(err: unknown): boolean {
  // Temporal's client wraps the gRPC error (ServiceError → cause): look down the chain.
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (isUnavailableHere(e)) return true;
  }
  return false;
}

function isUnavailableHere(err: unknown): boolean {
  if (err instanceof postgres.PostgresError)
    return err.code.startsWith('08') || err.code === '57P01' || err.code === '57P03';
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (
    code === 'ECONNREFUSED' ||
    code === 'CONNECTION_CLOSED' ||
    code === 'CONNECT_TIMEOUT' ||
    code === 'CONNECTION_ENDED'
  )
    return true;
  // Temporal's gRPC client reports an unreachable server as UNAVAILABLE (code 14).
  return (
    (err as { code?: unknown } | undefined)?.code === 14 ||
    /\b14 UNAVAILABLE\b|ECONNREFUSED/.test(String(err))
  );
}

/** One place where every error becomes a response. Unknown errors are logged, never shown. */
export function handleError(err: Error, c: Context, log: Logger): Response {
  if (err instanceof AppError) {
    for (const [k, v] of Object.entries(headersOf(err))) c.header(k, v);
    return c.json(errorBody(err), statusOf[err.code]);
  }
  if (err instanceof WorkflowNotFoundError) return c.json(errorBody(errors.runNotFound()), 404);
  if (err instanceof WorkflowExecutionAlreadyStartedError)
    return c.json(errorBody(errors.runInProgress(undefined)), 409);
  if (isUnavailable(err)) {
    log.warn({ err }, 'dependency unavailable');
    return c.json(
      errorBody(
        new AppError('SERVICE_UNAVAILABLE', 'A backing service (Postgres or Temporal) is unreachable', {
          help: 'Retry shortly',
        }),
      ),
      503,
    );
  }
  const requestId = newId('req');
  log.error({ err, requestId, path: c.req.path }, 'unhandled error');
  return c.json(
    { detail: 'Internal server error', error_code: 'INTERNAL_ERROR', request_id: requestId },
    500,
  );
}
