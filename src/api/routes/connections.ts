import { createRoute, z } from '@hono/zod-openapi';
import { and, desc, eq } from 'drizzle-orm';
import postgres from 'postgres';
import { connections, ingestions } from '../../db/schema/index.js';
import { localConnectionConfigSchema, s3ConnectionConfigSchema } from '../../domain/schemas.js';
import { newId } from '../../lib/ids.js';
import { resolveLocalRoot } from '../../storage/local.js';
import { type ApiDeps, newRouter } from '../app.js';
import { ApiError, errors } from '../errors.js';
import { commonErrors, IdParam, jsonBody, jsonResponse, notFound } from '../openapi.js';

const name = z.string().min(1).max(200);

const CreateConnection = z
  .discriminatedUnion('kind', [
    z.object({ name, kind: z.literal('s3'), config: s3ConnectionConfigSchema }),
    z.object({ name, kind: z.literal('local'), config: localConnectionConfigSchema }),
  ])
  .openapi('CreateConnection');

const Connection = z
  .object({
    id: z.string(),
    name: z.string(),
    kind: z.enum(['s3', 'local']),
    config: z.record(z.string(), z.unknown()).describe('credentials appear only as env-var names'),
    created_at: z.string(),
  })
  .openapi('Connection');

type ConnectionRow = typeof connections.$inferSelect;

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
  const { db } = deps;
  const router = newRouter();

  router.openapi(
    createRoute({
      method: 'post',
      path: '/connections',
      summary: 'Create a connection (s3 or local folder)',
      request: { body: jsonBody(CreateConnection) },
      responses: {
        201: jsonResponse(Connection, 'Created'),
        ...commonErrors,
        409: jsonResponse(z.object({}).passthrough(), 'Name taken'),
      },
    }),
    async (c) => {
      const { tenantId } = c.get('principal');
      const body = c.req.valid('json');
      if (body.kind === 'local' && !resolveLocalRoot(body.config, deps.localSourceRoots)) {
        throw new ApiError(400, 'VALIDATION_ERROR', 'config.path is outside the folders this server allows', {
          field: 'config.path',
          help: 'The operator lists readable folders in LOCAL_SOURCE_ROOTS',
        });
      }
      try {
        const [row] = await db
          .insert(connections)
          .values({ id: newId('conn'), tenantId, name: body.name, kind: body.kind, config: body.config })
          .returning();
        return c.json(toConnectionJson(row!), 201);
      } catch (err) {
        if (err instanceof postgres.PostgresError && err.code === '23505') {
          throw new ApiError(409, 'CONNECTION_EXISTS', `A connection named "${body.name}" already exists`);
        }
        throw err;
      }
    },
  );

  router.openapi(
    createRoute({
      method: 'get',
      path: '/connections',
      summary: 'List connections',
      responses: {
        200: jsonResponse(z.object({ items: z.array(Connection) }), 'Connections'),
        ...commonErrors,
      },
    }),
    async (c) => {
      const rows = await db
        .select()
        .from(connections)
        .where(eq(connections.tenantId, c.get('principal').tenantId))
        .orderBy(desc(connections.createdAt));
      return c.json({ items: rows.map(toConnectionJson) }, 200);
    },
  );

  router.openapi(
    createRoute({
      method: 'get',
      path: '/connections/{id}',
      summary: 'Get a connection',
      request: { params: IdParam },
      responses: { 200: jsonResponse(Connection, 'Connection'), ...commonErrors, ...notFound },
    }),
    async (c) => {
      const [row] = await db
        .select()
        .from(connections)
        .where(
          and(
            eq(connections.id, c.req.valid('param').id),
            eq(connections.tenantId, c.get('principal').tenantId),
          ),
        );
      if (!row) throw errors.connectionNotFound();
      return c.json(toConnectionJson(row), 200);
    },
  );

  router.openapi(
    createRoute({
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
      const { tenantId } = c.get('principal');
      const id = c.req.valid('param').id;
      const [owned] = await db
        .select({ id: connections.id })
        .from(connections)
        .where(and(eq(connections.id, id), eq(connections.tenantId, tenantId)));
      if (!owned) throw errors.connectionNotFound();
      const [used] = await db
        .select({ id: ingestions.id })
        .from(ingestions)
        .where(eq(ingestions.connectionId, id))
        .limit(1);
      if (used) {
        throw new ApiError(409, 'CONNECTION_IN_USE', `Connection is used by ingestion ${used.id}`, {
          help: 'Delete or re-point its ingestions first',
        });
      }
      await db.delete(connections).where(and(eq(connections.id, id), eq(connections.tenantId, tenantId)));
      return c.body(null, 204);
    },
  );

  return router;
}
