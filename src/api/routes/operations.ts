import { z } from '@hono/zod-openapi';
import { operationStatuses } from '../../db/schema/index.js';
import { cancelOperation, getOperation, type OperationView } from '../../services/records.js';
import {
  commonErrors,
  IdParam,
  ImpactSchema,
  jsonResponse,
  notFound,
  OperationStepSchema,
} from '../openapi.js';
import { type ApiDeps, apiRoute, newRouter } from '../router.js';

const Operation = z
  .object({
    id: z.string(),
    ingestion_id: z.string().nullable().describe('null for an operation of a connection'),
    connection_id: z
      .string()
      .nullable()
      .describe('the connection of a seed 004 data refresh (`POST /refresh`); null for an ingestion’s'),
    type: z
      .string()
      .describe(
        'full_refresh, fresh_start, drop_table, reprocess (an ingestion’s); table_data_refresh, connection_data_refresh (a connection’s)',
      ),
    status: z.enum(operationStatuses),
    message: z.string(),
    requested_by: z.string(),
    auto_run: z.boolean(),
    run_id: z.string().nullable(),
    operations: z.array(OperationStepSchema),
    impact: z.union([ImpactSchema, z.object({})]),
    warnings: z.array(z.string()),
    notes: z.array(z.string()),
    error: z.string().nullable(),
    timestamp: z.string(),
    created_at: z.string(),
    finished_at: z.string().nullable(),
    result: z
      .record(z.string(), z.unknown())
      .nullable()
      .describe(
        'once a connection’s data refresh ends: seed 004’s body (TableDataRefreshResult or ConnectionDataRefreshResult); null otherwise',
      ),
  })
  .openapi('Operation');

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
    async (c) =>
      c.json(
        toOperationJson(await getOperation(deps, c.get('principal').tenantId, c.req.valid('param').id)),
        200,
      ),
  );

  router.openapi(
    apiRoute('ingestion:run', {
      method: 'post',
      path: '/operations/{id}/cancel',
      summary:
        'Cancel a running operation: its run is cancelled, a swap keeps the live table, and it ends cancelled',
      request: { params: IdParam },
      responses: {
        200: jsonResponse(Operation, 'The operation, cancelled (or already finished: unchanged)'),
        ...commonErrors,
        ...notFound,
      },
    }),
    async (c) =>
      c.json(
        toOperationJson(await cancelOperation(deps, c.get('principal').tenantId, c.req.valid('param').id)),
        200,
      ),
  );
  return router;
}

function toOperationJson(op: OperationView) {
  return {
    id: op.id,
    ingestion_id: op.ingestionId,
    connection_id: op.connectionId,
    type: op.type,
    status: op.status,
    message: `${op.type} ${op.status}`,
    requested_by: op.requestedBy,
    auto_run: op.autoRun,
    run_id: op.runId,
    operations: op.steps,
    impact: op.impact,
    warnings: op.warnings,
    notes: op.notes,
    error: op.error,
    timestamp: op.createdAt.toISOString(),
    created_at: op.createdAt.toISOString(),
    finished_at: op.finishedAt?.toISOString() ?? null,
    result: op.result,
  };
}
