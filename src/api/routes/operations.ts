import { z } from '@hono/zod-openapi';
import { operationStatuses } from '../../db/schema/index.js';
import { decideOperation } from '../../services/approval.js';
import { cancelOperation, getOperation, type OperationView } from '../../services/records.js';
import { rollbackOperation } from '../../services/rollback.js';
import {
  commonErrors,
  conflictResponse,
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
    rolled_back_at: z
      .string()
      .nullable()
      .describe(
        'a swap full refresh undone by POST /operations/{id}/rollback: when (its `rolled_back` step says what was done)',
      ),
    result: z
      .record(z.string(), z.unknown())
      .nullable()
      .describe(
        'once a connection’s data refresh ends: seed 004’s body (TableDataRefreshResult or ConnectionDataRefreshResult); null otherwise',
      ),
  })
  .openapi('Operation');

const RollbackBody = z
  .strictObject({
    grace_period_seconds: z
      .number()
      .int()
      .min(0)
      .max(7 * 24 * 3600)
      .optional()
      .describe(
        'how long the rolled-back version survives before it is deleted (default REFRESH_SWAP_GRACE_SECONDS)',
      ),
  })
  .openapi('RollbackRequest');

const RollbackResult = z
  .object({
    status: z.literal('success'),
    message: z.string(),
    operation_id: z.string(),
    operation_url: z.string(),
    table_name: z.string(),
    restored_version: z
      .string()
      .describe('the version live again, by the name it had while it waited out its grace period'),
    cancelled_deletion_id: z.string().describe('its pending deletion, cancelled'),
    rolled_back_version: z
      .object({ table_name: z.string(), deletion_id: z.string(), due_at: z.string() })
      .nullable()
      .describe(
        'the version the operation had swapped in, renamed aside and queued for deletion (GET /pending-deletions)',
      ),
    rolled_back_at: z.string(),
    carried_over: z
      .record(z.string(), z.unknown())
      .describe('what the restored version took over from the live table: grants, indexes, comments, views…'),
  })
  .openapi('RollbackResult');

const DecisionBody = z
  .strictObject({
    reason: z.string().max(1000).optional().describe('why, for the operation and the audit log'),
  })
  .openapi('ApprovalDecision');

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

  for (const approve of [true, false]) {
    router.openapi(
      apiRoute('ingestion:refresh', {
        method: 'post',
        path: approve ? '/operations/{id}/approve' : '/operations/{id}/abort',
        summary: approve
          ? 'Approve a swap full refresh waiting in awaiting_approval: the swap goes ahead'
          : 'Abort a swap full refresh waiting in awaiting_approval: its new version is discarded, the live table kept',
        description:
          'A swap full refresh with `checks` waits in `awaiting_approval` when a check fails (or with `"checks": "always"`); its `checks_evaluated` step holds the figures measured on the loaded new version and the live table (rows, rejected rows, columns added, dropped and retyped) and which checks failed. The decision is audited; `reason` is recorded with it.',
        request: {
          params: IdParam,
          body: { content: { 'application/json': { schema: DecisionBody } }, required: false },
        },
        responses: {
          200: jsonResponse(
            Operation,
            approve ? 'Approved: the swap goes on' : 'Aborted: the operation ends cancelled',
          ),
          ...commonErrors,
          ...notFound,
          ...conflictResponse(
            'The operation is not awaiting approval (NOT_AWAITING_APPROVAL, with its `status`)',
          ),
        },
      }),
      async (c) => {
        const { reason } = c.req.valid('json');
        const op = await decideOperation(deps, c.get('principal'), c.req.valid('param').id, {
          approve,
          reason,
        });
        return c.json(toOperationJson(op), 200);
      },
    );
  }

  router.openapi(
    apiRoute('ingestion:refresh', {
      method: 'post',
      path: '/operations/{id}/rollback',
      summary:
        'Undo a swap full refresh within its grace period: the previous version (and its file history) live again, the rolled-back one queued for deletion',
      request: {
        params: IdParam,
        body: { content: { 'application/json': { schema: RollbackBody } }, required: false },
      },
      responses: {
        200: jsonResponse(RollbackResult, 'Rolled back'),
        ...commonErrors,
        ...notFound,
        ...conflictResponse(
          'Grace period over (ROLLBACK_EXPIRED); not a completed swap full refresh, rolled back already, or a later refresh changed the table (NOT_ROLLBACKABLE); another operation is running (RUN_IN_PROGRESS)',
        ),
      },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      // Without a body the validator hands over `{}`: the default grace period.
      const { grace_period_seconds } = c.req.valid('json');
      const { rollback_id: _, ...rest } = await rollbackOperation(
        deps,
        c.get('principal'),
        id,
        grace_period_seconds,
      );
      return c.json(
        {
          status: 'success' as const,
          message: `Rolled back: ${rest.table_name} is the version before operation ${id} again`,
          operation_url: `/api/v1/operations/${id}`,
          ...rest,
        },
        200,
      );
    },
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
    rolled_back_at: op.steps.find((s) => s.operation === 'rolled_back')?.timestamp ?? null,
    result: op.result,
  };
}
