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
  400: errorResponse('Invalid request (VALIDATION_ERROR names the field)'),
  401: errorResponse('Missing or invalid bearer token (UNAUTHORIZED)'),
  503: errorResponse('Postgres or Temporal unreachable (SERVICE_UNAVAILABLE)'),
} as const;

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
