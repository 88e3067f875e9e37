import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError } from '@temporalio/client';
import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import postgres from 'postgres';
import type { ZodError } from 'zod';
import { newId } from '../lib/ids.js';
import type { Logger } from '../lib/logger.js';

/** Seed 001's error body: `{detail, error_code, help?}` plus code-specific fields (e.g. current_run_id). */
export interface ErrorBody {
  detail: string;
  error_code: string;
  help?: string;
  [extra: string]: unknown;
}

/** The one error class routes throw; the handler below turns it into a response. */
export class ApiError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: string,
    detail: string,
    readonly extra: { help?: string; headers?: Record<string, string>; [k: string]: unknown } = {},
  ) {
    super(detail);
  }

  body(): ErrorBody {
    const { headers: _headers, ...rest } = this.extra;
    return { detail: this.message, error_code: this.code, ...rest };
  }
}

export const errors = {
  ingestionNotFound: () => new ApiError(404, 'INGESTION_NOT_FOUND', 'Ingestion not found'),
  connectionNotFound: () => new ApiError(404, 'CONNECTION_NOT_FOUND', 'Connection not found'),
  runNotFound: () => new ApiError(404, 'RUN_NOT_FOUND', 'Run not found'),
  runInProgress: (
    currentRunId: string | undefined,
    detail = 'Another operation is running on this ingestion',
  ) =>
    new ApiError(409, 'RUN_IN_PROGRESS', detail, {
      current_run_id: currentRunId ?? null,
      help: 'Wait for the current run to complete or cancel it first',
      headers: currentRunId ? { 'X-Current-Run-ID': currentRunId } : {},
    }),
  confirmationRequired: () =>
    new ApiError(400, 'CONFIRMATION_REQUIRED', 'Confirmation required. Set confirm=true to proceed.', {
      help: 'This operation is destructive. Explicitly set confirm=true to proceed.',
    }),
};

export function validationError(err: ZodError, where: 'body' | 'query' | 'path'): ApiError {
  const first = err.issues[0];
  const field = first?.path.join('.') || where;
  return new ApiError(400, 'VALIDATION_ERROR', `Invalid ${where}: ${field}: ${first?.message ?? 'invalid'}`, {
    field,
    errors: err.issues.map((i) => ({ field: i.path.join('.'), message: i.message })),
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
  if (err instanceof ApiError) {
    for (const [k, v] of Object.entries(err.extra.headers ?? {})) c.header(k, v);
    return c.json(err.body(), err.status);
  }
  if (err instanceof WorkflowNotFoundError) return c.json(errors.runNotFound().body(), 404);
  if (err instanceof WorkflowExecutionAlreadyStartedError)
    return c.json(errors.runInProgress(undefined).body(), 409);
  if (isUnavailable(err)) {
    log.warn({ err }, 'dependency unavailable');
    return c.json(
      new ApiError(503, 'SERVICE_UNAVAILABLE', 'A backing service (Postgres or Temporal) is unreachable', {
        help: 'Retry shortly',
      }).body(),
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
