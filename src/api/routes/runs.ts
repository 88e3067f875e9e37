import { createRoute, z } from '@hono/zod-openapi';
import type { Sql } from '../../db/client.js';
import { runStatuses } from '../../db/schema/index.js';
import { type ApiDeps, newRouter } from '../app.js';
import { errors } from '../errors.js';
import { commonErrors, IdParam, jsonResponse, notFound } from '../openapi.js';

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
    bytes_read: z.number(),
    duration_ms: z.number().nullable(),
    error: z.string().nullable(),
    progress: z
      .object({
        files_total: z.number(),
        files_done: z.number(),
        files_failed: z.number(),
        records_written: z.number(),
      })
      .nullable()
      .describe('live while RUNNING: files done out of files queued'),
  })
  .openapi('Run');

export type RunJson = z.infer<typeof Run>;

/**
 * A run as the API shows it. While it runs, progress is counted from `processed_files` (the source
 * of truth the workflow writes through), so it is right even across worker restarts.
 */
export async function loadRun(sql: Sql, tenantId: string, runId: string): Promise<RunJson> {
  const [r] = await sql<
    {
      id: string;
      ingestionId: string;
      status: RunJson['status'];
      trigger: string;
      workflowId: string;
      startedAt: Date;
      finishedAt: Date | null;
      filesDiscovered: number;
      filesProcessed: number;
      filesFailed: number;
      filesSkipped: number;
      recordsWritten: number;
      bytesRead: number;
      durationMs: number | null;
      error: string | null;
    }[]
  >`
    select r.id, r.ingestion_id as "ingestionId", r.status, r.trigger, r.workflow_id as "workflowId",
           r.started_at as "startedAt", r.finished_at as "finishedAt", r.files_discovered as "filesDiscovered",
           r.files_processed as "filesProcessed", r.files_failed as "filesFailed", r.files_skipped as "filesSkipped",
           r.records_written as "recordsWritten", r.bytes_read as "bytesRead", r.duration_ms as "durationMs", r.error
    from autoloader.runs r join autoloader.ingestions i on i.id = r.ingestion_id
    where r.id = ${runId} and i.tenant_id = ${tenantId}`;
  if (!r) throw errors.runNotFound();
  let progress: RunJson['progress'] = null;
  if (r.status === 'RUNNING') {
    const [p] = await sql<{ total: number; done: number; failed: number; records: number }[]>`
      select count(*)::int as total,
             count(*) filter (where status in ('SUCCESS', 'FAILED'))::int as done,
             count(*) filter (where status = 'FAILED')::int as failed,
             coalesce(sum(records_ingested) filter (where status = 'SUCCESS'), 0)::bigint as records
      from autoloader.processed_files where ingestion_id = ${r.ingestionId} and run_id = ${r.id}`;
    progress = {
      files_total: p?.total ?? 0,
      files_done: p?.done ?? 0,
      files_failed: p?.failed ?? 0,
      records_written: Number(p?.records ?? 0),
    };
  }
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
    records_written: Number(r.recordsWritten),
    bytes_read: Number(r.bytesRead),
    duration_ms: r.durationMs === null ? null : Number(r.durationMs),
    error: r.error,
    progress,
  };
}

export function runsRouter(deps: ApiDeps) {
  const router = newRouter();
  router.openapi(
    createRoute({
      method: 'get',
      path: '/runs/{id}',
      summary: 'Get a run: status, metrics, and live progress while it runs',
      request: { params: IdParam },
      responses: { 200: jsonResponse(Run, 'Run'), ...commonErrors, ...notFound },
    }),
    async (c) => c.json(await loadRun(deps.sql, c.get('principal').tenantId, c.req.valid('param').id), 200),
  );
  return router;
}
