import { z } from '@hono/zod-openapi';
import { AppError, errors } from '../../domain/errors.js';
import { refreshModes, refreshStrategies } from '../../refresh/modes.js';
import { requestBatchRefresh } from '../../services/batch-refresh.js';
import { commonErrors, ErrorSchema, ImpactSchema, jsonBody, jsonResponse } from '../openapi.js';
import { type ApiDeps, apiRoute, newRouter } from '../router.js';

/** At most this many ingestions in one batch. */
export const maxBatchSize = 100;

export const BatchRefreshBody = z
  .strictObject({
    ingestion_ids: z
      .array(z.string().min(1).max(64))
      .min(1)
      .max(maxBatchSize)
      .describe(`The ingestions to refresh (at most ${maxBatchSize}, no repeats)`),
    operation: z.enum(['full_refresh', 'fresh_start']),
    confirm: z.boolean().optional().describe('Must be true: these operations are destructive'),
    dry_run: z.boolean().default(false).describe('Preview every refresh and sum the impact; change nothing'),
    auto_run: z.boolean().default(true).describe('Start a run after each table is dropped'),
    strategy: z
      .enum(refreshStrategies)
      .default('drop')
      .describe('full_refresh only: "swap" builds each new table aside and swaps it in'),
    stop_on_error: z
      .boolean()
      .default(false)
      .describe('Start nothing listed after an ingestion that could not be refreshed'),
    order: z
      .enum(['listed', 'parallel'])
      .default('parallel')
      .describe(
        '"parallel": up to BATCH_REFRESH_PARALLELISM (default 4) refreshing at once. "listed": one at a time in the listed order, each after the previous one ended (dependent tables)',
      ),
  })
  .openapi('BatchRefreshRequest');

const BatchEntrySchema = z
  .object({
    ingestion_id: z.string(),
    status: z
      .enum([
        'dry_run',
        'accepted',
        'running',
        'awaiting_approval',
        'success',
        'partial_failure',
        'failed',
        'cancelled',
      ])
      .describe('cancelled: not started because of stop_on_error'),
    operation_id: z.string().optional(),
    run_id: z.string().nullable().optional(),
    impact: ImpactSchema.optional(),
    warnings: z.array(z.string()).optional(),
    error: z
      .object({ error_code: z.string(), detail: z.string() })
      .optional()
      .describe('Why this ingestion was not refreshed (INGESTION_NOT_FOUND, RUN_IN_PROGRESS…)'),
  })
  .openapi('BatchRefreshEntry');

const BatchRefreshResponse = z
  .object({
    batch_id: z.string().describe('The batch’s operation id (a dry run records no operation)'),
    operation_id: z.string().optional().describe('The batch’s operation; absent for a dry run'),
    operation_url: z
      .string()
      .optional()
      .describe('`GET` it to follow the batch; its `result` holds how each entry ended'),
    workflow_id: z.string().optional().describe('The batch’s Temporal workflow'),
    status: z.enum(['dry_run', 'accepted', 'partial_failure', 'failed']),
    operation: z.enum(['full_refresh', 'fresh_start']),
    timestamp: z.string(),
    entries: z.array(BatchEntrySchema).describe('One per ingestion, in the listed order'),
    summary: z.object({
      total: z.number(),
      started: z.number(),
      failed: z.number(),
      cancelled: z.number(),
      impact: ImpactSchema.describe('Summed over the entries (the duration as if one after another)'),
      warnings: z.array(z.string()),
    }),
  })
  .openapi('BatchRefreshResponse');

const description = `Seed 001's batch refresh: each ingestion is refreshed through the same use case as \`/full-refresh\` or \`/fresh-start\`, at most \`BATCH_REFRESH_PARALLELISM\` (default 4) at once, and reported in its own entry. An ingestion that is busy (\`RUN_IN_PROGRESS\`) or not found (\`INGESTION_NOT_FOUND\`, also for another tenant's id) is reported in its entry without stopping the others, unless \`stop_on_error\`.

The batch counts as one request against the full-refresh rate limit (429 \`RATE_LIMITED\` refuses the whole batch), and the large-operation rule applies to its total estimated cost: above \`REFRESH_LARGE_OPERATION_USD\` a batch dry run of the same operation is needed first (400 \`DRY_RUN_REQUIRED\`).

The batch is one operation (type \`batch_refresh\`) and one Temporal workflow; each ingestion's refresh is a child of it under the ingestion's own workflow id and its own operation, named in its entry up front (\`accepted\`). Each member runs to its end before its lane takes the next. \`GET /operations/{operation_id}\` follows the batch: \`running\`, then \`success\` (every entry refreshed), \`partial_failure\` or \`failed\`, its \`result\` holding each entry's outcome (\`success\`, \`failed\` with \`error\`, \`cancelled\`) and a summary. \`POST /operations/{operation_id}/cancel\` cancels the members still going; those not started are \`cancelled\`.`;

/** Seed 001's `POST /batch-refresh`. */
export function batchRefreshRouter(deps: ApiDeps) {
  const router = newRouter();
  router.openapi(
    apiRoute('ingestion:refresh', {
      method: 'post',
      path: '/batch-refresh',
      summary: 'Batch refresh: a full refresh or fresh start of several ingestions, one entry each',
      description,
      request: { body: jsonBody(BatchRefreshBody) },
      responses: {
        200: jsonResponse(BatchRefreshResponse, 'Dry run: each entry previewed, impact and warnings summed'),
        202: jsonResponse(
          BatchRefreshResponse,
          'Started: one entry per ingestion, with its operation or error',
        ),
        ...commonErrors,
        429: jsonResponse(ErrorSchema, 'Too many full refreshes this hour (RATE_LIMITED)'),
      },
    }),
    async (c) => {
      const body = c.req.valid('json');
      if (body.confirm !== true) throw errors.confirmationRequired();
      const ids = body.ingestion_ids;
      const repeated = ids.find((id, i) => ids.indexOf(id) !== i);
      if (repeated !== undefined)
        throw errors.validation('ingestion_ids', `${repeated} is listed more than once`);
      const mode = refreshModes[body.operation];
      if (!mode.strategies.includes(body.strategy) || (body.strategy === 'swap' && !body.auto_run)) {
        throw new AppError(
          'VALIDATION_ERROR',
          'Invalid body: strategy: "swap" applies to a full refresh with auto_run',
          { field: 'strategy' },
        );
      }
      const out = await requestBatchRefresh(deps, {
        ingestionIds: ids,
        type: body.operation,
        autoRun: body.auto_run,
        dryRun: body.dry_run,
        strategy: body.strategy,
        stopOnError: body.stop_on_error,
        order: body.order,
        principal: c.get('principal'),
      });
      return c.json(
        {
          batch_id: out.batchId,
          ...(out.workflowId
            ? {
                operation_id: out.batchId,
                operation_url: `/api/v1/operations/${out.batchId}`,
                workflow_id: out.workflowId,
              }
            : {}),
          status: out.status,
          operation: body.operation,
          timestamp: out.timestamp,
          entries: out.entries,
          summary: out.summary,
        } as never,
        body.dry_run ? 200 : 202,
      );
    },
  );
  return router;
}
