import { z } from '@hono/zod-openapi';
import { runStatuses } from '../../db/schema/index.js';
import { findIngestion } from '../../services/ingestions.js';
import { cancelRun, getRun, listRuns, type RunView } from '../../services/runs.js';
import { commonErrors, IdParam, jsonResponse, notFound, PageQuery } from '../openapi.js';
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
      .describe('live while RUNNING: files done out of files queued'),
  })
  .openapi('Run');

export type RunJson = z.infer<typeof Run>;

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

  return router;
}
