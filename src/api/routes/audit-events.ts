import { z } from '@hono/zod-openapi';
import { listAuditEvents } from '../../services/records.js';
import { commonErrors, jsonResponse } from '../openapi.js';
import { type ApiDeps, apiRoute, newRouter } from '../router.js';

export function auditEventsRouter(deps: ApiDeps) {
  const router = newRouter();
  router.openapi(
    apiRoute('ingestion:read', {
      method: 'get',
      path: '/audit-events',
      summary: 'Destructive operations of this tenant: who, what, when, impact, result (newest first)',
      request: {
        query: z.object({
          ingestion_id: z.string().optional(),
          limit: z.coerce.number().int().min(1).max(1000).default(100),
        }),
      },
      responses: {
        200: jsonResponse(
          z.object({
            items: z.array(
              z
                .object({
                  id: z.number(),
                  subject: z.string(),
                  action: z.string(),
                  ingestion_id: z.string().nullable(),
                  operation_id: z.string().nullable(),
                  dry_run: z.boolean(),
                  impact: z.record(z.string(), z.unknown()).nullable(),
                  result: z.string(),
                  created_at: z.string(),
                })
                .openapi('AuditEvent'),
            ),
          }),
          'Events',
        ),
        ...commonErrors,
      },
    }),
    async (c) => {
      const { ingestion_id, limit } = c.req.valid('query');
      const items = await listAuditEvents(deps, c.get('principal').tenantId, {
        ingestionId: ingestion_id,
        limit,
      });
      return c.json({ items }, 200);
    },
  );
  return router;
}
