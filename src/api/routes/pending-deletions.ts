import { z } from '@hono/zod-openapi';
import { listPendingDeletions } from '../../services/records.js';
import { commonErrors, jsonResponse } from '../openapi.js';
import { type ApiDeps, apiRoute, newRouter } from '../router.js';

export function pendingDeletionsRouter(deps: ApiDeps) {
  const router = newRouter();
  router.openapi(
    apiRoute('ingestion:read', {
      method: 'get',
      path: '/pending-deletions',
      summary:
        'Old table versions waiting out their grace period (and, with include_done=true, those deleted)',
      request: { query: z.object({ include_done: z.enum(['true', 'false']).optional() }) },
      responses: {
        200: jsonResponse(
          z.object({
            items: z.array(
              z
                .object({
                  id: z.string(),
                  ingestion_id: z.string().nullable(),
                  operation_id: z.string().nullable(),
                  table_name: z.string(),
                  due_at: z.string(),
                  executed_at: z.string().nullable(),
                  created_at: z.string(),
                  attempts: z.number().int(),
                  last_error: z.string().nullable().openapi({
                    description: 'Why the last attempt could not drop the table, and what to do',
                  }),
                  failed_at: z
                    .string()
                    .nullable()
                    .openapi({ description: 'Set when the attempts ran out: the table waits for a person' }),
                })
                .openapi('PendingDeletion'),
            ),
          }),
          'Deletions',
        ),
        ...commonErrors,
      },
    }),
    async (c) => {
      const items = await listPendingDeletions(
        deps,
        c.get('principal').tenantId,
        c.req.valid('query').include_done === 'true',
      );
      return c.json({ items }, 200);
    },
  );
  return router;
}
