import { z } from '@hono/zod-openapi';
import { runStatuses } from '../../db/schema/index.js';
import { findIngestion } from '../../services/ingestions.js';
import { cancelRun, controlRun, getRun, listRuns, type RunView } from '../../services/runs.js';
import type { RunProgress } from '../../workflows/messages.js';
import {
  commonErrors,
  conflictResponse,
  IdParam,
  jsonBody,
  jsonResponse,
  notFound,
  PageQuery,
} from '../openapi.js';
import { type ApiDeps, apiRoute, newRouter } from '../router.js';

export const Run = z
  .object({
    id: z.string(),
    ingestion_id: z.string(),
    status: z.enum(runStatuses),
    trigger: z.string(),
    workflow_id: z.string(),
    started_at: z.string(),
    finished_at: z.string().nullable(),
    files_discovered: z.number(),
    files_processed: z.number(),
    files_failed: z.number(),
    files_skipped: z.number(),
    records_written: z.number(),
    rows_rejected: z.number().describe('rows set aside under on_error: skip_rows'),
    bytes_read: z.number(),
    duration_ms: z.number().nullable(),
    error: z.string().nullable(),
    progress: z
      .object({
        files_total: z.number(),
        files_done: z.number(),
        files_failed: z.number(),
        records_written: z.number(),
        rows_rejected: z.number(),
      })
      .nullable()
      .describe('live while RUNNING or PAUSED: files done out of files queued'),
  })
  .openapi('Run');

export type RunJson = z.infer<typeof Run>;

/** The run after a pause, resume or throttle, with the workflow's own word on its lanes. */
const ControlledRun = Run.extend({
  control: z
    .object({
      paused: z.boolean().describe('pause requested; the status is PAUSED once no batch is in flight'),
      max_parallel_files: z.number().int().describe('lanes the run loads with'),
      batches_in_flight: z.number().int().describe('batches of files loading now'),
    })
    .describe("the run's workflow, right after the change"),
}).openapi('ControlledRun');

const toControlledJson = (r: RunView & { control: RunProgress }): z.infer<typeof ControlledRun> => ({
  ...toRunJson(r),
  control: {
    paused: r.control.paused,
    max_parallel_files: r.control.maxParallelFiles,
    batches_in_flight: r.control.batchesInFlight,
  },
});

const notRunning = conflictResponse('The run has ended or is finishing (RUN_NOT_RUNNING)');

export function toRunJson(r: RunView): RunJson {
  return {
    id: r.id,
    ingestion_id: r.ingestionId,
    status: r.status,
    trigger: r.trigger,
    workflow_id: r.workflowId,
    started_at: r.startedAt.toISOString(),
    finished_at: r.finishedAt?.toISOString() ?? null,
    files_discovered: r.filesDiscovered,
    files_processed: r.filesProcessed,
    files_failed: r.filesFailed,
    files_skipped: r.filesSkipped,
    records_written: r.recordsWritten,
    rows_rejected: r.rowsRejected,
    bytes_read: r.bytesRead,
    duration_ms: r.durationMs,
    error: r.error,
    progress: r.progress && {
      files_total: r.progress.filesTotal,
      files_done: r.progress.filesDone,
      files_failed: r.progress.filesFailed,
      records_written: r.progress.recordsWritten,
      rows_rejected: r.progress.rowsRejected,
    },
  };
}

export function runsRouter(deps: ApiDeps) {
  const router = newRouter();
  // Each lane holds a Postgres session and a store stream: a bound keeps a typo from opening
  // hundreds, without forbidding more lanes than the default.
  const maxParallelFiles = Math.max(32, deps.runDefaults.parallelism);
  const ThrottleRun = z
    .object({
      max_parallel_files: z
        .number()
        .int()
        .min(1)
        .max(maxParallelFiles)
        .describe('the number of lanes (files loading at once); takes effect between batches'),
    })
    .strict()
    .openapi('ThrottleRun');

  router.openapi(
    apiRoute('ingestion:read', {
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
      const row = await findIngestion(deps, tenantId, c.req.valid('param').id);
      const page = await listRuns(deps, tenantId, row.id, c.req.valid('query'));
      return c.json({ items: page.items.map(toRunJson), next_cursor: page.nextCursor }, 200);
    },
  );

  router.openapi(
    apiRoute('ingestion:read', {
      method: 'get',
      path: '/runs/{id}',
      summary: 'Get a run: status, metrics, and live progress while it runs',
      request: { params: IdParam },
      responses: { 200: jsonResponse(Run, 'Run'), ...commonErrors, ...notFound },
    }),
    async (c) =>
      c.json(toRunJson(await getRun(deps, c.get('principal').tenantId, c.req.valid('param').id)), 200),
  );

  router.openapi(
    apiRoute('ingestion:run', {
      method: 'post',
      path: '/runs/{id}/cancel',
      summary:
        'Cancel a running run: files in flight finish or roll back, the run ends CANCELLED with its metrics, the ingestion is free again',
      request: { params: IdParam },
      responses: {
        200: jsonResponse(Run, 'The run, CANCELLED (or already finished: unchanged)'),
        ...commonErrors,
        ...notFound,
      },
    }),
    async (c) =>
      c.json(toRunJson(await cancelRun(deps, c.get('principal').tenantId, c.req.valid('param').id)), 200),
  );

  router.openapi(
    apiRoute('ingestion:run', {
      method: 'post',
      path: '/runs/{id}/pause',
      summary:
        'Pause a running run (or the run of a refresh): batches in flight finish, then no more files are claimed; the run shows PAUSED and its workflow keeps running',
      request: { params: IdParam },
      responses: {
        200: jsonResponse(
          ControlledRun,
          'Pause requested: PAUSED, or RUNNING until the batches in flight finish',
        ),
        ...commonErrors,
        ...notFound,
        ...notRunning,
      },
    }),
    async (c) => {
      const run = await controlRun(deps, c.get('principal').tenantId, c.req.valid('param').id, {
        paused: true,
      });
      return c.json(toControlledJson(run), 200);
    },
  );

  router.openapi(
    apiRoute('ingestion:run', {
      method: 'post',
      path: '/runs/{id}/resume',
      summary: 'Resume a paused run: its lanes claim files again and it shows RUNNING',
      request: { params: IdParam },
      responses: {
        200: jsonResponse(ControlledRun, 'Resumed (a run that was not paused: unchanged)'),
        ...commonErrors,
        ...notFound,
        ...notRunning,
      },
    }),
    async (c) => {
      const run = await controlRun(deps, c.get('principal').tenantId, c.req.valid('param').id, {
        paused: false,
      });
      return c.json(toControlledJson(run), 200);
    },
  );

  router.openapi(
    apiRoute('ingestion:run', {
      method: 'patch',
      path: '/runs/{id}',
      summary:
        'Throttle a running or paused run: fewer lanes stop after their current batch, more lanes start at once; nothing restarts',
      request: { params: IdParam, body: jsonBody(ThrottleRun) },
      responses: {
        200: jsonResponse(ControlledRun, 'The run with its new number of lanes'),
        ...commonErrors,
        ...notFound,
        ...notRunning,
      },
    }),
    async (c) => {
      const run = await controlRun(deps, c.get('principal').tenantId, c.req.valid('param').id, {
        maxParallelFiles: c.req.valid('json').max_parallel_files,
      });
      return c.json(toControlledJson(run), 200);
    },
  );

  return router;
}
