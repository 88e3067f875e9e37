import { bodyLimit } from 'hono/body-limit';
import { HTTPException } from 'hono/http-exception';
import { authenticate } from '../auth/tokens.js';
import { AppError } from '../domain/errors.js';
import { consoleRouter } from '../ui/router.js';
import { docsRouter } from './docs.js';
import { describeApi, documentConfig } from './docs-document.js';
import { handleError } from './errors.js';
import { renderMetrics } from './metrics.js';
import { type ApiDeps, newRouter } from './router.js';
import { adminRouter } from './routes/admin.js';
import { auditEventsRouter } from './routes/audit-events.js';
import { batchRefreshRouter } from './routes/batch-refresh.js';
import { connectionsRouter } from './routes/connections.js';
import { databaseConnectionsRouter } from './routes/database-connections.js';
import { ingestionsRouter } from './routes/ingestions.js';
import { operationsRouter } from './routes/operations.js';
import { pendingDeletionsRouter } from './routes/pending-deletions.js';
import { processedFilesRouter } from './routes/processed-files.js';
import { refreshRouter } from './routes/refresh.js';
import { refreshIfRouter } from './routes/refresh-if.js';
import { refreshRangeRouter } from './routes/refresh-range.js';
import { runsRouter } from './routes/runs.js';
import { schedulesRouter } from './routes/schedules.js';
import { schemaRouter } from './routes/schema.js';
import { secretsRouter } from './routes/secrets.js';
import { webhooksRouter } from './routes/webhooks.js';

export type { ApiDeps, AppEnv } from './router.js';

/** Largest request body accepted (BODY_TOO_LARGE above it). */
export const maxBodyBytes = 1024 * 1024;
const bodyTooLarge = () =>
  new AppError('BODY_TOO_LARGE', `Request body larger than ${maxBodyBytes / 1024} KiB`, {
    help: 'Request bodies are small JSON documents',
  });

const nulRefused = (where: string) =>
  new AppError(
    'VALIDATION_ERROR',
    `Invalid ${where}: contains a NUL character (\\u0000), which no field accepts`,
    {
      field: where,
    },
  );

/** One router per resource, mounted under /api/v1. */
const resources = [
  connectionsRouter,
  databaseConnectionsRouter,
  secretsRouter,
  ingestionsRouter,
  runsRouter,
  processedFilesRouter,
  schemaRouter,
  refreshRouter,
  refreshIfRouter,
  refreshRangeRouter,
  batchRefreshRouter,
  operationsRouter,
  schedulesRouter,
  pendingDeletionsRouter,
  auditEventsRouter,
  webhooksRouter,
  adminRouter,
];

export function createApp(deps: ApiDeps) {
  const app = newRouter();

  app.onError((err, c) => {
    // Hono's own refusals (the body parser, the content-type gate, the size limit) in our shape.
    if (err instanceof HTTPException) {
      const mapped =
        err.status === 400
          ? new AppError('MALFORMED_BODY', `Request body is not valid JSON: ${err.message}`)
          : err.status === 415
            ? new AppError('UNSUPPORTED_MEDIA_TYPE', 'Send the body as application/json', {
                help: 'Set Content-Type: application/json',
              })
            : err.status === 413
              ? bodyTooLarge()
              : undefined;
      if (mapped) return handleError(mapped, c, deps.log);
    }
    return handleError(err, c, deps.log);
  });
  app.notFound((c) =>
    c.json({ detail: `No route for ${c.req.method} ${c.req.path}`, error_code: 'NOT_FOUND' }, 404),
  );

  app.get('/health', async (c) => {
    await deps.sql`select 1`;
    return c.json({ status: 'ok' });
  });

  // Figures only, no tenant data. Open like most exporters unless METRICS_TOKEN is set; computed at
  // most once per METRICS_CACHE_SECONDS, so scrapes do not run the aggregates over the ledger.
  let metrics: { text: Promise<string>; until: number } | undefined;
  app.get('/metrics', async (c) => {
    if (deps.metrics.token && c.req.header('authorization') !== `Bearer ${deps.metrics.token}`) {
      throw new AppError('UNAUTHORIZED', 'GET /metrics needs the metrics token (METRICS_TOKEN)');
    }
    if (!metrics || metrics.until <= Date.now()) {
      const text = renderMetrics(deps.sql);
      metrics = { text, until: Date.now() + deps.metrics.cacheSeconds * 1000 };
      text.catch(() => {
        metrics = undefined;
      });
    }
    return c.text(await metrics.text, 200, { 'content-type': 'text/plain; version=0.0.4' });
  });

  app.route(
    '/ui',
    consoleRouter(deps, { api: (path, init) => app.request(path, init), temporalUiUrl: deps.temporalUiUrl }),
  );

  // Every request body is small (the largest is a connection or an ingestion with its columns).
  app.use(
    '/api/*',
    bodyLimit({
      maxSize: maxBodyBytes,
      onError: () => {
        throw bodyTooLarge();
      },
    }),
  );

  // Postgres text cannot hold a NUL character: one in a path, query or JSON string would fail
  // deep inside a query. It is refused at the door, for every route.
  app.use('/api/*', async (c, next) => {
    let url: string;
    try {
      url = decodeURIComponent(c.req.url);
    } catch (err) {
      if (!(err instanceof URIError)) throw err;
      throw new AppError('VALIDATION_ERROR', 'Invalid path or query: not valid percent-encoding', {
        field: 'path',
      });
    }
    if (url.includes('\u0000')) throw nulRefused('path');
    if (c.req.header('content-type')?.includes('json')) {
      const text = await c.req.text();
      if (text.includes('\u0000') || /\\u0000/i.test(text)) throw nulRefused('body');
    }
    await next();
  });

  app.use('/api/*', async (c, next) => {
    const header = c.req.header('authorization') ?? '';
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    const principal = match ? await authenticate(deps.db, match[1]!) : undefined;
    if (!principal) {
      throw new AppError('UNAUTHORIZED', 'A valid bearer token is required', {
        help: 'Send Authorization: Bearer <token>; `npm start` prints a development token',
      });
    }
    c.set('principal', principal);
    await next();
  });

  for (const resource of resources) app.route('/api/v1', resource(deps));

  const openApiDocument = describeApi(app);
  app.get('/openapi.json', (c) => c.json(openApiDocument()));
  app.route('/docs', docsRouter({ specUrl: '/openapi.json', title: documentConfig.info.title }));
  return app;
}

export type App = ReturnType<typeof createApp>;
