import { createRoute, z } from '@hono/zod-openapi';
import { and, desc, eq } from 'drizzle-orm';
import postgres from 'postgres';
import { connections, fileStatuses, ingestions } from '../../db/schema/index.js';
import { destinationInputSchema, sourceSchema } from '../../domain/schemas.js';
import { newId } from '../../lib/ids.js';
import { clearProcessedFiles, currentOperationId, startIngestionRun } from '../../services/operations.js';
import { type ApiDeps, newRouter } from '../app.js';
import { ApiError, errors } from '../errors.js';
import { commonErrors, conflict, IdParam, jsonBody, jsonResponse, notFound, PageQuery } from '../openapi.js';
import { findIngestion as findIngestionFor, type IngestionRow } from '../shared/ingestion-access.js';
import { loadRun, Run } from './runs.js';

const CreateIngestion = z
  .object({
    name: z.string().min(1).max(200),
    connection_id: z.string().min(1),
    source: sourceSchema,
    destination: destinationInputSchema.describe(
      '"schema.table" or {schema, table}; lower-case SQL identifiers',
    ),
  })
  .openapi('CreateIngestion');

const UpdateIngestion = z
  .object({
    name: z.string().min(1).max(200).optional(),
    source: sourceSchema.partial().optional().describe('fields given replace the current ones'),
    status: z.enum(['active', 'paused']).optional(),
  })
  .strict()
  .openapi('UpdateIngestion');

const Ingestion = z
  .object({
    id: z.string(),
    name: z.string(),
    connection_id: z.string(),
    source: z.record(z.string(), z.unknown()),
    destination: z.string(),
    status: z.enum(['active', 'paused']),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .openapi('Ingestion');

const ProcessedFile = z
  .object({
    id: z.number(),
    file_path: z.string(),
    file_size_bytes: z.number(),
    file_modified_at: z.string().nullable(),
    file_etag: z.string().nullable(),
    status: z.enum(fileStatuses),
    run_id: z.string().nullable(),
    discovered_at: z.string(),
    processing_started_at: z.string().nullable(),
    processed_at: z.string().nullable(),
    records_ingested: z.number().nullable(),
    bytes_read: z.number().nullable(),
    processing_duration_ms: z.number().nullable(),
    error_message: z.string().nullable(),
    error_type: z.string().nullable(),
    retry_count: z.number(),
    schema_version: z
      .number()
      .nullable()
      .describe('the schema version (GET /ingestions/{id}/schema) the file was last loaded with'),
  })
  .openapi('ProcessedFile');

const ConfirmQuery = z.object({
  confirm: z
    .enum(['true', 'false'])
    .optional()
    .transform((v) => v === 'true'),
});

function toIngestionJson(row: IngestionRow) {
  return {
    id: row.id,
    name: row.name,
    connection_id: row.connectionId,
    source: row.source as Record<string, unknown>,
    destination: `${row.destinationSchema}.${row.destinationTable}`,
    status: row.status,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  };
}

const iso = (d: Date | string | null) => (d === null ? null : new Date(d).toISOString());

export function ingestionsRouter(deps: ApiDeps) {
  const { db, sql } = deps;
  const router = newRouter();

  const findIngestion = (tenantId: string, id: string) => findIngestionFor(db, tenantId, id);

  function checkSourceFitsConnection(kind: 's3' | 'local', source: { bucket?: string }) {
    if (kind === 's3' && !source.bucket) {
      throw new ApiError(
        400,
        'VALIDATION_ERROR',
        'Invalid body: source.bucket: required for an s3 connection',
        {
          field: 'source.bucket',
        },
      );
    }
  }

  router.openapi(
    createRoute({
      method: 'post',
      path: '/ingestions',
      summary:
        'Create an ingestion: a source (connection, bucket, prefix, pattern, format) and a destination table',
      request: { body: jsonBody(CreateIngestion) },
      responses: {
        201: jsonResponse(Ingestion, 'Created'),
        ...commonErrors,
        409: jsonResponse(z.object({}).passthrough(), 'Name or destination taken'),
      },
    }),
    async (c) => {
      const { tenantId } = c.get('principal');
      const body = c.req.valid('json');
      const [conn] = await db
        .select()
        .from(connections)
        .where(and(eq(connections.id, body.connection_id), eq(connections.tenantId, tenantId)));
      if (!conn) {
        throw new ApiError(400, 'VALIDATION_ERROR', 'Invalid body: connection_id: no such connection', {
          field: 'connection_id',
        });
      }
      checkSourceFitsConnection(conn.kind, body.source);
      try {
        const [row] = await db
          .insert(ingestions)
          .values({
            id: newId('ing'),
            tenantId,
            name: body.name,
            connectionId: conn.id,
            source: body.source,
            destinationSchema: body.destination.schema,
            destinationTable: body.destination.table,
          })
          .returning();
        return c.json(toIngestionJson(row!), 201);
      } catch (err) {
        if (err instanceof postgres.PostgresError && err.code === '23505') {
          const what = err.constraint_name === 'ingestions_destination_idx' ? 'destination table' : 'name';
          throw new ApiError(409, 'INGESTION_EXISTS', `Another ingestion already uses this ${what}`);
        }
        throw err;
      }
    },
  );

  router.openapi(
    createRoute({
      method: 'get',
      path: '/ingestions',
      summary: 'List ingestions',
      responses: {
        200: jsonResponse(z.object({ items: z.array(Ingestion) }), 'Ingestions'),
        ...commonErrors,
      },
    }),
    async (c) => {
      const rows = await db
        .select()
        .from(ingestions)
        .where(eq(ingestions.tenantId, c.get('principal').tenantId))
        .orderBy(desc(ingestions.createdAt));
      return c.json({ items: rows.map(toIngestionJson) }, 200);
    },
  );

  router.openapi(
    createRoute({
      method: 'get',
      path: '/ingestions/{id}',
      summary: 'Get an ingestion',
      request: { params: IdParam },
      responses: { 200: jsonResponse(Ingestion, 'Ingestion'), ...commonErrors, ...notFound },
    }),
    async (c) =>
      c.json(toIngestionJson(await findIngestion(c.get('principal').tenantId, c.req.valid('param').id)), 200),
  );

  router.openapi(
    createRoute({
      method: 'patch',
      path: '/ingestions/{id}',
      summary: 'Update an ingestion (name, source fields, status)',
      request: { params: IdParam, body: jsonBody(UpdateIngestion) },
      responses: { 200: jsonResponse(Ingestion, 'Updated'), ...commonErrors, ...notFound },
    }),
    async (c) => {
      const { tenantId } = c.get('principal');
      const current = await findIngestion(tenantId, c.req.valid('param').id);
      const body = c.req.valid('json');
      const merged = body.source ? { ...(current.source as object), ...body.source } : current.source;
      const source = sourceSchema.safeParse(merged);
      if (!source.success)
        throw new ApiError(
          400,
          'VALIDATION_ERROR',
          `Invalid body: source: ${source.error.issues[0]?.message}`,
        );
      const [conn] = await db.select().from(connections).where(eq(connections.id, current.connectionId));
      checkSourceFitsConnection(conn!.kind, source.data);
      const [row] = await db
        .update(ingestions)
        .set({
          name: body.name ?? current.name,
          source: source.data,
          status: body.status ?? current.status,
          updatedAt: new Date(),
        })
        .where(eq(ingestions.id, current.id))
        .returning();
      return c.json(toIngestionJson(row!), 200);
    },
  );

  router.openapi(
    createRoute({
      method: 'delete',
      path: '/ingestions/{id}',
      summary: 'Delete an ingestion and its history (the destination table is kept)',
      request: { params: IdParam },
      responses: { 204: { description: 'Deleted' }, ...commonErrors, ...notFound, ...conflict },
    }),
    async (c) => {
      const row = await findIngestion(c.get('principal').tenantId, c.req.valid('param').id);
      const running = await runningOperation(row.id);
      if (running !== null)
        throw errors.runInProgress(running, 'Cannot delete an ingestion while an operation runs');
      await db.delete(ingestions).where(eq(ingestions.id, row.id));
      return c.body(null, 204);
    },
  );

  /** The running operation's id, or null when none runs. */
  async function runningOperation(ingestionId: string): Promise<string | null> {
    const [open] = await sql<{ id: string }[]>`
      select id from autoloader.runs where ingestion_id = ${ingestionId} and status = 'RUNNING' limit 1`;
    if (!open) return null;
    return (await currentOperationId(deps.temporal, ingestionId).catch(() => open.id)) ?? open.id;
  }

  router.openapi(
    createRoute({
      method: 'post',
      path: '/ingestions/{id}/run',
      summary: 'Start a run: load new and changed files',
      request: { params: IdParam },
      responses: { 202: jsonResponse(Run, 'Run started'), ...commonErrors, ...notFound, ...conflict },
    }),
    async (c) => {
      const { tenantId } = c.get('principal');
      const row = await findIngestion(tenantId, c.req.valid('param').id);
      const runId = await startIngestionRun(deps, row.id, 'manual');
      return c.json(await loadRun(sql, tenantId, runId), 202);
    },
  );

  router.openapi(
    createRoute({
      method: 'get',
      path: '/ingestions/{id}/runs',
      summary: 'List the runs of an ingestion, newest first',
      request: { params: IdParam, query: PageQuery },
      responses: {
        200: jsonResponse(z.object({ items: z.array(Run), next_cursor: z.string().nullable() }), 'Runs'),
        ...commonErrors,
        ...notFound,
      },
    }),
    async (c) => {
      const { tenantId } = c.get('principal');
      const row = await findIngestion(tenantId, c.req.valid('param').id);
      const { limit, cursor } = c.req.valid('query');
      const ids = await sql<{ id: string; startedAt: Date }[]>`
        select id, started_at as "startedAt" from autoloader.runs
        where ingestion_id = ${row.id} ${cursor ? sql`and (started_at, id) < (select started_at, id from autoloader.runs where id = ${cursor})` : sql``}
        order by started_at desc, id desc limit ${limit + 1}`;
      const page = ids.slice(0, limit);
      const items = await Promise.all(page.map((r) => loadRun(sql, tenantId, r.id)));
      return c.json({ items, next_cursor: ids.length > limit ? page.at(-1)!.id : null }, 200);
    },
  );

  router.openapi(
    createRoute({
      method: 'get',
      path: '/ingestions/{id}/processed-files',
      summary: 'List the file history of an ingestion',
      request: {
        params: IdParam,
        query: PageQuery.extend({ status: z.enum(fileStatuses).optional() }),
      },
      responses: {
        200: jsonResponse(
          z.object({ items: z.array(ProcessedFile), next_cursor: z.string().nullable() }),
          'Files',
        ),
        ...commonErrors,
        ...notFound,
      },
    }),
    async (c) => {
      const row = await findIngestion(c.get('principal').tenantId, c.req.valid('param').id);
      const { limit, cursor, status } = c.req.valid('query');
      const after = cursor ? Number.parseInt(cursor, 10) : 0;
      if (!Number.isSafeInteger(after))
        throw new ApiError(400, 'VALIDATION_ERROR', 'Invalid query: cursor', { field: 'cursor' });
      const rows = await sql<Record<string, unknown>[]>`
        -- int8 columns as float8: postgres.js returns int8 as strings; these stay far below 2^53.
        select id::float8 as id, file_path, file_size_bytes::float8 as file_size_bytes, file_modified_at, file_etag,
               status, run_id, discovered_at, processing_started_at, processed_at,
               records_ingested::float8 as records_ingested, bytes_read::float8 as bytes_read,
               processing_duration_ms::float8 as processing_duration_ms, error_message, error_type, retry_count,
               schema_version
        from autoloader.processed_files
        where ingestion_id = ${row.id} and scope = 'live' and id > ${after} ${status ? sql`and status = ${status}` : sql``}
        order by id limit ${limit + 1}`;
      const page = rows.slice(0, limit).map((r) => ({
        ...r,
        file_modified_at: iso(r.file_modified_at as Date | null),
        discovered_at: iso(r.discovered_at as Date)!,
        processing_started_at: iso(r.processing_started_at as Date | null),
        processed_at: iso(r.processed_at as Date | null),
      })) as z.infer<typeof ProcessedFile>[];
      return c.json({ items: page, next_cursor: rows.length > limit ? String(page.at(-1)!.id) : null }, 200);
    },
  );

  router.openapi(
    createRoute({
      method: 'delete',
      path: '/ingestions/{id}/processed-files',
      summary: 'Clear the file history: the next run loads every file again. Needs confirm=true.',
      request: { params: IdParam, query: ConfirmQuery },
      responses: {
        200: jsonResponse(
          z.object({
            ingestion_id: z.string(),
            files_cleared: z.number(),
            oldest_file: z.string().nullable(),
            newest_file: z.string().nullable(),
          }),
          'Cleared',
        ),
        ...commonErrors,
        ...notFound,
        ...conflict,
      },
    }),
    async (c) => {
      const row = await findIngestion(c.get('principal').tenantId, c.req.valid('param').id);
      if (!c.req.valid('query').confirm) throw errors.confirmationRequired();
      const result = await clearProcessedFiles(deps, row.id);
      return c.json(
        {
          ingestion_id: row.id,
          files_cleared: result.filesCleared,
          oldest_file: result.oldestFile,
          newest_file: result.newestFile,
        },
        200,
      );
    },
  );

  return router;
}
