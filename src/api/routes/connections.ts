import { z } from '@hono/zod-openapi';
import {
  type ConnectionRow,
  createConnection,
  deleteConnection,
  getConnection,
  listConnections,
} from '../../services/connections.js';
import { connectionKinds } from '../../sources/index.js';
import { connectionInputSchema } from '../../sources/registry.js';
import { commonErrors, IdParam, jsonBody, jsonResponse, notFound } from '../openapi.js';
import { type ApiDeps, apiRoute, newRouter } from '../router.js';

const CreateConnection = connectionInputSchema(z.string().min(1).max(200)).openapi('CreateConnection');

const Connection = z
  .object({
    id: z.string(),
    name: z.string(),
    kind: z.enum(connectionKinds),
    config: z.record(z.string(), z.unknown()).describe('credentials appear only as env-var names'),
    created_at: z.string(),
  })
  .openapi('Connection');

export function toConnectionJson(row: ConnectionRow) {
  return {
    id: row.id,
    name: row.name,
    kind: row.kind,
    config: row.config as Record<string, unknown>,
    created_at: row.createdAt.toISOString(),
  };
}

export function connectionsRouter(deps: ApiDeps) {
  const router = newRouter();

  router.openapi(
    apiRoute('connection:write', {
      method: 'post',
      path: '/connections',
      summary: `Create a connection (${connectionKinds.join(', ')})`,
      request: { body: jsonBody(CreateConnection) },
      responses: {
        201: jsonResponse(Connection, 'Created'),
        ...commonErrors,
        409: jsonResponse(z.object({}).passthrough(), 'Name taken'),
      },
    }),
    async (c) => {
      const body = c.req.valid('json');
      const row = await createConnection(deps, c.get('principal').tenantId, body);
      return c.json(toConnectionJson(row), 201);
    },
  );

  router.openapi(
    apiRoute('connection:read', {
      method: 'get',
      path: '/connections',
      summary: 'List connections',
      responses: {
        200: jsonResponse(z.object({ items: z.array(Connection) }), 'Connections'),
        ...commonErrors,
      },
    }),
    async (c) => {
      const rows = await listConnections(deps, c.get('principal').tenantId);
      return c.json({ items: rows.map(toConnectionJson) }, 200);
    },
  );

  router.openapi(
    apiRoute('connection:read', {
      method: 'get',
      path: '/connections/{id}',
      summary: 'Get a connection',
      request: { params: IdParam },
      responses: { 200: jsonResponse(Connection, 'Connection'), ...commonErrors, ...notFound },
    }),
    async (c) =>
      c.json(
        toConnectionJson(await getConnection(deps, c.get('principal').tenantId, c.req.valid('param').id)),
        200,
      ),
  );

  router.openapi(
    apiRoute('connection:write', {
      method: 'delete',
      path: '/connections/{id}',
      summary: 'Delete a connection no ingestion uses',
      request: { params: IdParam },
      responses: {
        204: { description: 'Deleted' },
        ...commonErrors,
        ...notFound,
        409: jsonResponse(z.object({}).passthrough(), 'In use'),
      },
    }),
    async (c) => {
      await deleteConnection(deps, c.get('principal').tenantId, c.req.valid('param').id);
      return c.body(null, 204);
    },
  );

  return router;
}
