import { OpenAPIHono } from '@hono/zod-openapi';
import type { Client } from '@temporalio/client';
import { HTTPException } from 'hono/http-exception';
import { authenticate, type Principal } from '../auth/tokens.js';
import type { Db, Sql } from '../db/client.js';
import type { Logger } from '../lib/logger.js';
import type { RefreshSettings } from '../services/refresh.js';
import { docsPage } from './docs.js';
import { ApiError, handleError, validationError } from './errors.js';
import { renderMetrics } from './metrics.js';
import { connectionsRouter } from './routes/connections.js';
import { ingestionsRouter } from './routes/ingestions.js';
import { refreshRouter } from './routes/refresh.js';
import { runsRouter } from './routes/runs.js';
import { schedulesRouter } from './routes/schedules.js';
import { schemaRouter } from './routes/schema.js';

export interface RunDefaults {
  parallelism: number;
  batchMaxFiles: number;
  batchMaxBytes: number;
}

export interface ApiDeps {
  db: Db;
  sql: Sql;
  temporal: Client;
  taskQueue: string;
  runDefaults: RunDefaults;
  localSourceRoots: string[];
  refresh: RefreshSettings;
  log: Logger;
}

export type AppEnv = { Variables: { principal: Principal } };

export function newRouter() {
  return new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (!result.success) {
        const where = result.target === 'json' ? 'body' : result.target === 'param' ? 'path' : 'query';
        throw validationError(result.error, where);
      }
    },
  });
}

export function createApp(deps: ApiDeps) {
  const app = newRouter();

  app.onError((err, c) => {
    if (err instanceof HTTPException && err.status === 400) {
      return handleError(
        new ApiError(400, 'MALFORMED_BODY', `Request body is not valid JSON: ${err.message}`),
        c,
        deps.log,
      );
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

  // Unauthenticated, like most exporters: figures only, no tenant data. Bind the API privately if that matters.
  app.get('/metrics', async (c) =>
    c.text(await renderMetrics(deps.sql), 200, { 'content-type': 'text/plain; version=0.0.4' }),
  );

  app.use('/api/*', async (c, next) => {
    const header = c.req.header('authorization') ?? '';
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    const principal = match ? await authenticate(deps.db, match[1]!) : undefined;
    if (!principal) {
      throw new ApiError(401, 'UNAUTHORIZED', 'A valid bearer token is required', {
        help: 'Send Authorization: Bearer <token>; `npm start` prints a development token',
      });
    }
    c.set('principal', principal);
    await next();
  });

  app.route('/api/v1', connectionsRouter(deps));
  app.route('/api/v1', ingestionsRouter(deps));
  app.route('/api/v1', schemaRouter(deps));
  app.route('/api/v1', runsRouter(deps));
  app.route('/api/v1', refreshRouter(deps));
  app.route('/api/v1', schedulesRouter(deps));

  app.openAPIRegistry.registerComponent('securitySchemes', 'bearer', { type: 'http', scheme: 'bearer' });
  app.doc31('/openapi.json', {
    openapi: '3.1.0',
    info: {
      title: 'Autoloader API',
      version: '0.1.0',
      description:
        'Load files from object storage into Postgres tables, exactly once, as Temporal workflows.',
    },
    security: [{ bearer: [] }],
  });
  app.get('/docs', (c) =>
    c.html(
      docsPage(
        app.getOpenAPI31Document({ openapi: '3.1.0', info: { title: 'Autoloader API', version: '0.1.0' } }),
      ),
    ),
  );
  return app;
}

export type App = ReturnType<typeof createApp>;
