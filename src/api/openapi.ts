import { z } from '@hono/zod-openapi';

export const ErrorSchema = z
  .object({
    detail: z.string(),
    error_code: z.string(),
    help: z.string().optional(),
  })
  .passthrough()
  .openapi('Error');

export function jsonBody<T extends z.ZodType>(schema: T, description?: string) {
  return { content: { 'application/json': { schema } }, required: true, description };
}

export function jsonResponse<T extends z.ZodType>(schema: T, description: string) {
  return { content: { 'application/json': { schema } }, description };
}

const errorResponse = (description: string) => jsonResponse(ErrorSchema, description);

/** The error responses every authenticated route can give. */
export const commonErrors = {
  400: errorResponse(
    'Invalid request (VALIDATION_ERROR names the field; MALFORMED_BODY; CONFIRMATION_REQUIRED…)',
  ),
  401: errorResponse('Missing or invalid bearer token (UNAUTHORIZED)'),
  403: errorResponse('The token lacks the route’s permission (INSUFFICIENT_PERMISSIONS)'),
  413: errorResponse('Request body too large (BODY_TOO_LARGE)'),
  415: errorResponse('Body not sent as application/json (UNSUPPORTED_MEDIA_TYPE)'),
  503: errorResponse('Postgres or Temporal unreachable (SERVICE_UNAVAILABLE)'),
} as const;

/** A 409 with its error code. */
export const conflictResponse = (description: string) => ({ 409: errorResponse(description) }) as const;

export const notFound = { 404: errorResponse('Not found, or owned by another tenant') } as const;
export const conflict = {
  409: errorResponse('Another operation is running (RUN_IN_PROGRESS, with current_run_id)'),
} as const;

export const IdParam = z.object({
  id: z
    .string()
    .min(1)
    .max(64)
    .openapi({ param: { name: 'id', in: 'path' } }),
});

export const PageQuery = z.object({
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  cursor: z.string().optional().describe('next_cursor of the previous page'),
});

/** One step of an operation, as seed 001 reports it. */
export const OperationStepSchema = z
  .object({
    operation: z.string(),
    status: z.enum(['success', 'failed', 'skipped', 'pending']),
    timestamp: z.string(),
    details: z.record(z.string(), z.unknown()),
    error: z.string().nullable().optional(),
    error_code: z.string().nullable().optional(),
  })
  .openapi('OperationStep');

/** Seed 001's impact block. */
export const ImpactSchema = z
  .object({
    files_to_process: z.number(),
    files_skipped: z.number(),
    estimated_data_size_bytes: z.number(),
    estimated_data_size_gb: z.number(),
    estimated_cost_usd: z.number(),
    estimated_duration_minutes: z.number(),
  })
  .openapi('Impact');
