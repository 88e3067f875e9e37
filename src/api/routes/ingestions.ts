import { z } from '@hono/zod-openapi';
import { AppError, errors } from '../../domain/errors.js';
import { destinationInputSchema, sourcePatchSchema, sourceSchema } from '../../domain/schemas.js';
import { requireUsableConnection } from '../../services/connections.js';
import {
  createIngestion,
  deleteIngestion,
  findIngestion,
  type IngestionRow,
  listIngestions,
  updateIngestion,
} from '../../services/ingestions.js';
import { getRun, startIngestionRun } from '../../services/runs.js';
import { deleteSchedule, findSchedule, setSchedule } from '../../services/schedules.js';
import {
  commonErrors,
  conflict,
  ErrorSchema,
  IdParam,
  jsonBody,
  jsonResponse,
  notFound,
} from '../openapi.js';
import { type ApiDeps, apiRoute, newRouter } from '../router.js';
import { Run, toRunJson } from './runs.js';
import { RefreshScheduleBody, ScheduleResponse, toScheduleJson } from './schedules.js';

const CreateIngestion = z
  .strictObject({
    name: z.string().min(1).max(200),
    connection_id: z.string().min(1),
    source: sourceSchema,
    destination: destinationInputSchema.describe(
      '"schema.table" or {schema, table}; lower-case SQL identifiers',
    ),
    adopt_existing_table: z
      .boolean()
      .optional()
      .describe('admin only: load into an existing table the service did not create (audited)'),
  })
  .openapi('CreateIngestion');

const UpdateIngestion = z
  .object({
    name: z.string().min(1).max(200).optional(),
    source: sourcePatchSchema
      .optional()
      .describe('only the fields given change; the others keep their values'),
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

/** One ingestion with its two schedules (the contract: at most one of each). */
const IngestionDetail = Ingestion.extend({
  schedule: ScheduleResponse.nullable().describe('its run schedule (PUT /ingestions/{id}/schedule)'),
  refresh_schedule: ScheduleResponse.nullable().describe(
    'its refresh schedule (refresh_schedule here, or PUT /ingestions/{id}/refresh-schedule)',
  ),
}).openapi('IngestionDetail');

/** Seed 001's PUT: PATCH's fields, merged the same way, plus the refresh schedule (null removes it). */
const PutIngestion = UpdateIngestion.extend({
  refresh_schedule: RefreshScheduleBody.nullable().optional(),
}).openapi('PutIngestion');

async function detailJson(deps: ApiDeps, row: IngestionRow) {
  const [run, refresh] = await Promise.all([
    findSchedule(deps, row.id, 'run'),
    findSchedule(deps, row.id, 'refresh'),
  ]);
  return {
    ...toIngestionJson(row),
    schedule: run ? toScheduleJson(run) : null,
    refresh_schedule: refresh ? toScheduleJson(refresh) : null,
  };
}

export function toIngestionJson(row: IngestionRow) {
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

export function ingestionsRouter(deps: ApiDeps) {
  const router = newRouter();

  router.openapi(
    apiRoute('ingestion:write', {
      method: 'post',
      path: '/ingestions',
      summary:
        'Create an ingestion: a source (connection, bucket, prefix, pattern, format) and a destination table',
      request: { body: jsonBody(CreateIngestion) },
      responses: {
        201: jsonResponse(Ingestion, 'Created'),
        ...commonErrors,
        409: jsonResponse(ErrorSchema, 'Name or destination taken'),
      },
    }),
    async (c) => {
      const body = c.req.valid('json');
      const row = await createIngestion(deps, c.get('principal'), {
        name: body.name,
        connectionId: body.connection_id,
        source: body.source,
        destination: body.destination,
        adoptExistingTable: body.adopt_existing_table,
      });
      return c.json(toIngestionJson(row), 201);
    },
  );

  router.openapi(
    apiRoute('ingestion:read', {
      method: 'get',
      path: '/ingestions',
      summary: 'List ingestions',
      responses: {
        200: jsonResponse(z.object({ items: z.array(Ingestion) }), 'Ingestions'),
        ...commonErrors,
      },
    }),
    async (c) => {
      const rows = await listIngestions(deps, c.get('principal').tenantId);
      return c.json({ items: rows.map(toIngestionJson) }, 200);
    },
  );

  router.openapi(
    apiRoute('ingestion:read', {
      method: 'get',
      path: '/ingestions/{id}',
      summary: 'Get an ingestion',
      request: { params: IdParam },
      responses: { 200: jsonResponse(IngestionDetail, 'Ingestion'), ...commonErrors, ...notFound },
    }),
    async (c) =>
      c.json(
        await detailJson(
          deps,
          await findIngestion(deps, c.get('principal').tenantId, c.req.valid('param').id),
        ),
        200,
      ),
  );

  router.openapi(
    apiRoute('ingestion:write', {
      method: 'put',
      path: '/ingestions/{id}',
      summary:
        'Seed 001’s update: the fields given change (as PATCH), and refresh_schedule sets (null: removes) the refresh schedule',
      request: { params: IdParam, body: jsonBody(PutIngestion) },
      responses: {
        200: jsonResponse(IngestionDetail, 'Updated'),
        ...commonErrors,
        ...notFound,
        403: jsonResponse(ErrorSchema, 'INSUFFICIENT_PERMISSIONS'),
      },
    }),
    async (c) => {
      const principal = c.get('principal');
      const { refresh_schedule: refreshSchedule, ...patch } = c.req.valid('json');
      // A refresh schedule refreshes: it needs what the refresh-schedule route needs.
      if (refreshSchedule !== undefined && !principal.permissions.includes('ingestion:refresh')) {
        throw new AppError('INSUFFICIENT_PERMISSIONS', 'A refresh schedule needs ingestion:refresh', {
          required_permission: 'ingestion:refresh',
        });
      }
      const id = c.req.valid('param').id;
      // The schedule first: its checks (interval floor, cap) refuse before anything changes.
      const current = await findIngestion(deps, principal.tenantId, id);
      if (refreshSchedule) await setSchedule(deps, current, refreshSchedule, 'refresh');
      else if (refreshSchedule === null && (await findSchedule(deps, current.id, 'refresh')))
        await deleteSchedule(deps, current.id, 'refresh');
      const row =
        Object.keys(patch).length > 0 ? await updateIngestion(deps, principal.tenantId, id, patch) : current;
      return c.json(await detailJson(deps, row), 200);
    },
  );

  router.openapi(
    apiRoute('ingestion:write', {
      method: 'patch',
      path: '/ingestions/{id}',
      summary: 'Update an ingestion (name, source fields, status)',
      request: { params: IdParam, body: jsonBody(UpdateIngestion) },
      responses: { 200: jsonResponse(Ingestion, 'Updated'), ...commonErrors, ...notFound },
    }),
    async (c) => {
      const row = await updateIngestion(
        deps,
        c.get('principal').tenantId,
        c.req.valid('param').id,
        c.req.valid('json'),
      );
      return c.json(toIngestionJson(row), 200);
    },
  );

  router.openapi(
    apiRoute('ingestion:write', {
      method: 'delete',
      path: '/ingestions/{id}',
      summary:
        'Delete an ingestion, its history and its schedule. The table is kept (still the tenant’s) unless drop_table=true&confirm=true',
      request: {
        params: IdParam,
        query: z.object({
          drop_table: z
            .enum(['true', 'false'])
            .optional()
            .describe('drop the destination table too (needs confirm=true)'),
          confirm: z.enum(['true', 'false']).optional(),
        }),
      },
      responses: { 204: { description: 'Deleted' }, ...commonErrors, ...notFound, ...conflict },
    }),
    async (c) => {
      const q = c.req.valid('query');
      const dropTable = q.drop_table === 'true';
      if (dropTable && q.confirm !== 'true') throw errors.confirmationRequired();
      await deleteIngestion(deps, c.get('principal'), c.req.valid('param').id, { dropTable });
      return c.body(null, 204);
    },
  );

  router.openapi(
    apiRoute('ingestion:run', {
      method: 'post',
      path: '/ingestions/{id}/run',
      summary: 'Start a run: load new and changed files',
      request: { params: IdParam },
      responses: { 202: jsonResponse(Run, 'Run started'), ...commonErrors, ...notFound, ...conflict },
    }),
    async (c) => {
      const { tenantId } = c.get('principal');
      const row = await findIngestion(deps, tenantId, c.req.valid('param').id);
      await requireUsableConnection(deps, tenantId, row.connectionId);
      const runId = await startIngestionRun(deps, row.id, 'manual');
      return c.json(toRunJson(await getRun(deps, tenantId, runId)), 202);
    },
  );

  return router;
}
