import { createRoute, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import type { Selection } from '../../activities/reprocess.js';
import type { OperationType } from '../../db/schema/index.js';
import { requestRefresh } from '../../services/refresh.js';
import { type ApiDeps, type AppEnv, newRouter } from '../app.js';
import { ApiError, errors, validationError } from '../errors.js';
import { commonErrors, conflict, ErrorSchema, IdParam, jsonResponse, notFound } from '../openapi.js';
import { findIngestion } from '../shared/ingestion-access.js';

const RefreshBody = z
  .object({
    confirm: z.boolean().optional().describe('Must be true: these operations are destructive'),
    auto_run: z.boolean().default(true).describe('Start a run after the table is dropped'),
    dry_run: z.boolean().default(false).describe('Preview what would happen; change nothing'),
    strategy: z
      .enum(['drop', 'swap'])
      .default('drop')
      .describe(
        'full refresh only: "swap" builds the new table aside and swaps it in atomically (no downtime)',
      ),
    grace_period_seconds: z
      .number()
      .int()
      .min(0)
      .max(7 * 24 * 3600)
      .optional()
      .describe('swap: how long the previous version survives (default REFRESH_SWAP_GRACE_SECONDS)'),
  })
  .openapi('RefreshRequest');

const RefreshResponse = z
  .record(z.string(), z.unknown())
  .describe(
    'seed 001 response: status, message, ingestion_id, run_id, timestamp, operations, impact, warnings, notes',
  )
  .openapi('RefreshResponse');

const refreshErrors = {
  ...commonErrors,
  ...notFound,
  ...conflict,
  403: jsonResponse(ErrorSchema, 'Token lacks ingestion:refresh (INSUFFICIENT_PERMISSIONS)'),
  429: jsonResponse(ErrorSchema, 'Too many full refreshes this hour (RATE_LIMITED)'),
  500: jsonResponse(RefreshResponse, 'A step failed part-way (PARTIAL_FAILURE, with recovery)'),
} as const;

// Documented, but read by readBody(): the body may be absent.
const optionalBody = { content: { 'application/json': { schema: RefreshBody } }, required: false };

/** The body is optional (DELETE clients often send none); when present it must be valid. */
async function readBody(c: Context<AppEnv>): Promise<z.infer<typeof RefreshBody>> {
  const text = await c.req.text();
  let raw: unknown = {};
  if (text.trim() !== '') {
    try {
      raw = JSON.parse(text);
    } catch (err) {
      throw new ApiError(400, 'MALFORMED_BODY', `Request body is not valid JSON: ${(err as Error).message}`);
    }
  }
  const parsed = RefreshBody.safeParse(raw);
  if (!parsed.success) throw validationError(parsed.error, 'body');
  return parsed.data;
}

export function refreshRouter(deps: ApiDeps) {
  const router = newRouter();

  async function handle(
    c: Context<AppEnv>,
    type: OperationType,
    body: z.infer<typeof RefreshBody>,
    selection?: Selection,
  ) {
    const principal = c.get('principal');
    if (!principal.permissions.includes('ingestion:refresh')) {
      throw new ApiError(
        403,
        'INSUFFICIENT_PERMISSIONS',
        'This token lacks the ingestion:refresh permission',
        {
          help: 'Ask an administrator for a token with ingestion:refresh',
        },
      );
    }
    const ingestion = await findIngestion(deps.db, principal.tenantId, c.req.param('id') ?? '');
    if (body.confirm !== true) throw errors.confirmationRequired();
    if (body.strategy === 'swap' && (type !== 'full_refresh' || !body.auto_run)) {
      throw new ApiError(
        400,
        'VALIDATION_ERROR',
        'Invalid body: strategy: "swap" applies to a full refresh with auto_run',
        {
          field: 'strategy',
        },
      );
    }
    return requestRefresh(deps, {
      type,
      ingestionId: ingestion.id,
      table: `${ingestion.destinationSchema}.${ingestion.destinationTable}`,
      autoRun: body.auto_run,
      dryRun: body.dry_run,
      strategy: body.strategy,
      graceSeconds: body.grace_period_seconds,
      selection,
      principal,
    });
  }

  // These routes answer 200, 202 or 500 bodies of one loose shape: they are documented in the
  // OpenAPI registry and served by plain Hono handlers (the typed route helper cannot express a
  // status chosen at run time).
  const refreshRoute = (path: string, summary: string, type: OperationType) => {
    router.openAPIRegistry.registerPath(
      createRoute({
        method: 'post',
        path,
        summary,
        request: { params: IdParam, body: optionalBody },
        responses: {
          200: jsonResponse(RefreshResponse, 'Dry run: would_perform, impact, warnings, next_steps'),
          202: jsonResponse(
            RefreshResponse,
            'Accepted: operations done so far, run_id, impact, warnings, notes',
          ),
          ...refreshErrors,
        },
      }),
    );
    router.post(path.replace('{id}', ':id'), async (c) => {
      const out = await handle(c, type, await readBody(c));
      return c.json(out.body, out.status);
    });
  };

  refreshRoute(
    '/ingestions/{id}/full-refresh',
    'Full refresh: drop the table, clear the file history, reload every file',
    'full_refresh',
  );
  refreshRoute(
    '/ingestions/{id}/fresh-start',
    'Fresh start: drop the table, keep the history, load only new files',
    'fresh_start',
  );
  refreshRoute('/ingestions/{id}/refresh/full', 'Alias of full-refresh (seed 000 name)', 'full_refresh');
  refreshRoute('/ingestions/{id}/refresh/new-only', 'Alias of fresh-start (seed 000 name)', 'fresh_start');

  const ReprocessBody = z
    .object({
      confirm: z.boolean().optional(),
      dry_run: z.boolean().default(false),
      auto_run: z.boolean().default(true),
      pattern: z
        .string()
        .min(1)
        .max(1000)
        .optional()
        .describe('glob matched against the key below the source prefix'),
      modified_from: z.iso.datetime({ offset: true }).optional().describe('files modified at or after'),
      modified_to: z.iso.datetime({ offset: true }).optional().describe('files modified before'),
    })
    .refine((b) => b.pattern || b.modified_from || b.modified_to, {
      message: 'select files with pattern and/or modified_from/modified_to',
      path: ['pattern'],
    })
    .openapi('ReprocessRequest');
  router.openAPIRegistry.registerPath(
    createRoute({
      method: 'post',
      path: '/ingestions/{id}/reprocess',
      summary: "Selective refresh: remove exactly the selected files' rows and history, then load them again",
      request: {
        params: IdParam,
        body: { content: { 'application/json': { schema: ReprocessBody } }, required: true },
      },
      responses: {
        200: jsonResponse(RefreshResponse, 'Dry run'),
        202: jsonResponse(RefreshResponse, 'Accepted: rows_removed, run_triggered'),
        ...refreshErrors,
      },
    }),
  );
  router.post('/ingestions/:id/reprocess', async (c) => {
    const text = await c.req.text();
    let raw: unknown = {};
    try {
      raw = text.trim() === '' ? {} : JSON.parse(text);
    } catch (err) {
      throw new ApiError(400, 'MALFORMED_BODY', `Request body is not valid JSON: ${(err as Error).message}`);
    }
    const parsed = ReprocessBody.safeParse(raw);
    if (!parsed.success) {
      // A missing confirm is reported as such, before the selection is checked.
      if ((raw as { confirm?: unknown }).confirm !== true) throw errors.confirmationRequired();
      throw validationError(parsed.error, 'body');
    }
    const b = parsed.data;
    const out = await handle(
      c,
      'reprocess',
      { confirm: b.confirm, dry_run: b.dry_run, auto_run: b.auto_run, strategy: 'drop' },
      { pattern: b.pattern, modifiedFrom: b.modified_from, modifiedTo: b.modified_to },
    );
    return c.json(out.body, out.status);
  });

  router.openAPIRegistry.registerPath(
    createRoute({
      method: 'delete',
      path: '/ingestions/{id}/table',
      summary: 'Drop the destination table only (idempotent); confirm in the body or as ?confirm=true',
      request: {
        params: IdParam,
        body: optionalBody,
        query: z.object({ confirm: z.enum(['true', 'false']).optional() }),
      },
      responses: {
        200: jsonResponse(RefreshResponse, 'Dropped, or did not exist (table_existed: false)'),
        ...refreshErrors,
      },
    }),
  );
  router.delete('/ingestions/:id/table', async (c) => {
    const body = await readBody(c);
    if (c.req.query('confirm') === 'true') body.confirm = true;
    const out = await handle(c, 'drop_table', body);
    return c.json(out.body, out.status === 202 ? 200 : out.status);
  });

  router.openapi(
    createRoute({
      method: 'get',
      path: '/operations/{id}',
      summary: "An operation's steps and state, while it runs and after",
      request: { params: IdParam },
      responses: { 200: jsonResponse(RefreshResponse, 'Operation'), ...commonErrors, ...notFound },
    }),
    async (c) => {
      const [op] = await deps.sql<Record<string, unknown>[]>`
        select id, ingestion_id, type, status, requested_by, auto_run, run_id, steps, impact, warnings, notes, error,
               created_at, finished_at
        from autoloader.operations where id = ${c.req.valid('param').id} and tenant_id = ${c.get('principal').tenantId}`;
      if (!op) throw new ApiError(404, 'OPERATION_NOT_FOUND', 'Operation not found');
      const { steps, ...rest } = op;
      return c.json(
        {
          ...rest,
          status: String(op.status),
          message: `${String(op.type)} ${String(op.status)}`,
          ingestion_id: String(op.ingestion_id),
          timestamp: new Date(op.created_at as Date).toISOString(),
          operations: steps,
        },
        200,
      );
    },
  );

  router.openapi(
    createRoute({
      method: 'get',
      path: '/pending-deletions',
      summary:
        'Old table versions waiting out their grace period (and, with include_done=true, those deleted)',
      request: { query: z.object({ include_done: z.enum(['true', 'false']).optional() }) },
      responses: {
        200: jsonResponse(z.object({ items: z.array(z.record(z.string(), z.unknown())) }), 'Deletions'),
        ...commonErrors,
      },
    }),
    async (c) => {
      const all = c.req.valid('query').include_done === 'true';
      const items = await deps.sql<Record<string, unknown>[]>`
        select id, ingestion_id, operation_id, schema_name || '.' || table_name as table_name, due_at, executed_at, created_at
        from autoloader.pending_deletions
        where tenant_id = ${c.get('principal').tenantId} ${all ? deps.sql`` : deps.sql`and executed_at is null`}
        order by due_at`;
      return c.json({ items }, 200);
    },
  );

  router.openapi(
    createRoute({
      method: 'get',
      path: '/audit-events',
      summary: 'Destructive operations of this tenant: who, what, when, impact, result (newest first)',
      request: {
        query: z.object({
          ingestion_id: z.string().optional(),
          limit: z.coerce.number().int().min(1).max(1000).default(100),
        }),
      },
      responses: {
        200: jsonResponse(z.object({ items: z.array(z.record(z.string(), z.unknown())) }), 'Events'),
        ...commonErrors,
      },
    }),
    async (c) => {
      const { ingestion_id, limit } = c.req.valid('query');
      const items = await deps.sql<Record<string, unknown>[]>`
        select id::float8 as id, subject, action, ingestion_id, operation_id, dry_run, impact, result, created_at
        from autoloader.audit_events
        where tenant_id = ${c.get('principal').tenantId} ${ingestion_id ? deps.sql`and ingestion_id = ${ingestion_id}` : deps.sql``}
        order by id desc limit ${limit}`;
      return c.json({ items }, 200);
    },
  );

  return router;
}
