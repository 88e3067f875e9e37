import { z } from '@hono/zod-openapi';
import {
  type ConnectionProblem,
  type ConnectionRow,
  connectionProblems,
  createConnection,
  deleteConnection,
  getConnection,
  listConnections,
  testConnection,
} from '../../services/connections.js';
import { connectionKinds } from '../../sources/index.js';
import { connectionInputSchema } from '../../sources/registry.js';
import { commonErrors, ErrorSchema, IdParam, jsonBody, jsonResponse, notFound } from '../openapi.js';
import { type ApiDeps, apiRoute, newRouter } from '../router.js';

const CreateConnection = connectionInputSchema(z.string().min(1).max(200)).openapi('CreateConnection');

const Connection = z
  .object({
    id: z.string(),
    name: z.string(),
    kind: z.enum(connectionKinds),
    config: z.record(z.string(), z.unknown()).describe('credentials appear only as references, never values'),
    created_at: z.string(),
    problems: z
      .array(z.object({ error_code: z.string(), field: z.string().optional(), detail: z.string() }))
      .describe('why the connection would be refused now (e.g. SECRET_NOT_ALLOWED); empty when usable'),
  })
  .openapi('Connection');

export function toConnectionJson(row: ConnectionRow, problems: ConnectionProblem[]) {
  return {
    id: row.id,
    name: row.name,
    kind: row.kind,
    config: row.config as Record<string, unknown>,
    created_at: row.createdAt.toISOString(),
    problems,
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
        409: jsonResponse(ErrorSchema, 'Name taken'),
      },
    }),
    async (c) => {
      const body = c.req.valid('json');
      const row = await createConnection(deps, c.get('principal').tenantId, body);
      return c.json(toConnectionJson(row, []), 201);
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
      const items = await Promise.all(
        rows.map(async (r) => toConnectionJson(r, await connectionProblems(deps, r))),
      );
      return c.json({ items }, 200);
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
    async (c) => {
      const row = await getConnection(deps, c.get('principal').tenantId, c.req.valid('param').id);
      return c.json(toConnectionJson(row, await connectionProblems(deps, row)), 200);
    },
  );

  router.openapi(
    apiRoute('connection:write', {
      method: 'delete',
      path: '/connections/{id}',
      summary: 'Delete a connection no ingestion uses',
      description:
        'A database connection’s cached tables are renamed aside and queued in `GET /pending-deletions`, dropped after REFRESH_SWAP_GRACE_SECONDS.',
      request: { params: IdParam },
      responses: {
        204: { description: 'Deleted' },
        ...commonErrors,
        ...notFound,
        409: jsonResponse(ErrorSchema, 'In use'),
      },
    }),
    async (c) => {
      await deleteConnection(deps, c.get('principal').tenantId, c.req.valid('param').id);
      return c.body(null, 204);
    },
  );

  router.openapi(
    apiRoute('connection:write', {
      method: 'post',
      path: '/connections/{id}/test',
      summary:
        'Test a connection: what was checked, and what failed (answers 200 either way, within seconds)',
      request: {
        params: IdParam,
        body: {
          content: {
            'application/json': {
              schema: z
                .object({
                  bucket: z.string().min(1).max(255).optional().describe('a bucket (container) to list'),
                  prefix: z.string().max(1024).optional(),
                })
                .strict()
                .openapi('ConnectionTestRequest'),
            },
          },
          required: false,
        },
      },
      responses: {
        200: jsonResponse(
          z
            .object({
              ok: z.boolean(),
              checks: z.array(z.object({ name: z.string(), ok: z.boolean(), detail: z.string() })),
            })
            .openapi('ConnectionTest'),
          'What was checked',
        ),
        ...commonErrors,
        ...notFound,
      },
    }),
    async (c) => {
      const target = c.req.valid('json') ?? {};
      return c.json(
        await testConnection(deps, c.get('principal').tenantId, c.req.valid('param').id, target),
        200,
      );
    },
  );

  return router;
}
