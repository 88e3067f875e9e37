import { z } from '@hono/zod-openapi';
import { getOperation } from '../../services/records.js';
import { commonErrors, IdParam, jsonResponse, notFound } from '../openapi.js';
import { type ApiDeps, apiRoute, newRouter } from '../router.js';

const Operation = z.record(z.string(), z.unknown()).openapi('Operation');

export function operationsRouter(deps: ApiDeps) {
  const router = newRouter();
  router.openapi(
    apiRoute('ingestion:read', {
      method: 'get',
      path: '/operations/{id}',
      summary: "An operation's steps and state, while it runs and after",
      request: { params: IdParam },
      responses: { 200: jsonResponse(Operation, 'Operation'), ...commonErrors, ...notFound },
    }),
    async (c) => {
      const op = await getOperation(deps, c.get('principal').tenantId, c.req.valid('param').id);
      const { steps, ...rest } = op;
      return c.json(
        {
          ...rest,
          status: String(op.status),
          message: `${String(op.type)} ${String(op.status)}`,
          ingestion_id: String(op.ingestion_id),
          timestamp: new Date(op.created_at as Date).toISOString(),
          operations: steps,
        },
        200,
      );
    },
  );
  return router;
}
