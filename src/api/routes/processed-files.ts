import { z } from '@hono/zod-openapi';
import { fileStatuses } from '../../db/schema/index.js';
import { errors } from '../../domain/errors.js';
import { clearProcessedFiles, listProcessedFiles, listRejectedRows } from '../../services/history.js';
import { findIngestion } from '../../services/ingestions.js';
import { commonErrors, conflict, IdParam, jsonResponse, notFound, PageQuery } from '../openapi.js';
import { type ApiDeps, apiRoute, newRouter } from '../router.js';

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
    rows_rejected: z
      .number()
      .nullable()
      .describe(
        'rows set aside when the file loaded (on_error: skip_rows), see GET /ingestions/{id}/rejected-rows',
      ),
  })
  .openapi('ProcessedFile');

const RejectedRow = z
  .object({
    id: z.number(),
    file_id: z.number().describe('the processed file (GET /ingestions/{id}/processed-files) the row is from'),
    file_path: z.string(),
    run_id: z.string().describe('the run whose load of the file rejected the row'),
    line: z.number().describe('the line of the file the row is on (for CSV, the line its record ends on)'),
    error: z.string(),
    raw: z.string().describe('the row as it was in the file, up to 1000 characters'),
    created_at: z.string(),
  })
  .openapi('RejectedRow');

const ConfirmQuery = z.object({
  confirm: z
    .enum(['true', 'false'])
    .optional()
    .transform((v) => v === 'true'),
});

const iso = (d: Date | null) => (d === null ? null : new Date(d).toISOString());

/** The file history of an ingestion (seed 002's processed_files). */
export function processedFilesRouter(deps: ApiDeps) {
  const router = newRouter();

  router.openapi(
    apiRoute('ingestion:read', {
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
      const row = await findIngestion(deps, c.get('principal').tenantId, c.req.valid('param').id);
      const page = await listProcessedFiles(deps, row.id, c.req.valid('query'));
      const items = page.items.map((r) => ({
        ...r,
        file_modified_at: iso(r.file_modified_at),
        discovered_at: iso(r.discovered_at)!,
        processing_started_at: iso(r.processing_started_at),
        processed_at: iso(r.processed_at),
      }));
      return c.json({ items, next_cursor: page.nextCursor }, 200);
    },
  );

  router.openapi(
    apiRoute('ingestion:read', {
      method: 'get',
      path: '/ingestions/{id}/rejected-rows',
      summary: 'List the rows the files of an ingestion set aside (on_error: skip_rows)',
      description:
        'A file loaded under on_error: skip_rows keeps its good rows and sets aside the rest here, with the line, the error and the text of each. They go when the file is loaded again (a new version, a reprocess, a full refresh) or forgotten.',
      request: {
        params: IdParam,
        query: PageQuery.extend({ file_id: z.coerce.number().int().min(1).optional() }),
      },
      responses: {
        200: jsonResponse(
          z.object({ items: z.array(RejectedRow), next_cursor: z.string().nullable() }),
          'Rejected rows',
        ),
        ...commonErrors,
        ...notFound,
      },
    }),
    async (c) => {
      const row = await findIngestion(deps, c.get('principal').tenantId, c.req.valid('param').id);
      const query = c.req.valid('query');
      const page = await listRejectedRows(deps, row.id, { ...query, fileId: query.file_id });
      const items = page.items.map((r) => ({ ...r, created_at: iso(r.created_at)! }));
      return c.json({ items, next_cursor: page.nextCursor }, 200);
    },
  );

  router.openapi(
    apiRoute('ingestion:refresh', {
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
      const row = await findIngestion(deps, c.get('principal').tenantId, c.req.valid('param').id);
      if (!c.req.valid('query').confirm) throw errors.confirmationRequired();
      const result = await clearProcessedFiles(deps, c.get('principal'), row.id);
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
