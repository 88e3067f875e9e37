import { randomUUID } from 'node:crypto';
import { type Context, Hono } from 'hono';
import { createMiddleware } from 'hono/factory';
import { html } from 'hono/html';
import type { HtmlEscapedString } from 'hono/utils/html';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { z } from 'zod';
import type { ApiDeps } from '../api/router.js';
import {
  type ApiRequest,
  type ApiResult,
  type AuditEvent,
  ConsoleApi,
  ConsoleApiError,
  type DryRun,
  type Ingestion,
  type Operation,
  type Page,
  type PendingDeletion,
  type ProcessedFile,
  type RefreshAccepted,
  type Run,
  type Schedule,
  type SchemaHistory,
  SessionExpired,
} from './api.js';
import { findAsset } from './assets.js';
import { ui } from './layout.js';
import { AuditPage, DeletionsPage } from './pages/admin.js';
import { fileFilters, IngestionPage, type IngestionPageData } from './pages/ingestion.js';
import { IngestionsPage } from './pages/ingestions.js';
import { ErrorPage, LoginPage } from './pages/misc.js';
import { OperationLive, OperationPage } from './pages/operation.js';
import { PreviewPage } from './pages/refresh.js';
import { RunLive, RunPage, temporalWorkflowUrl } from './pages/run.js';
import {
  checkLoginNonce,
  endSession,
  loginNonce,
  normalizeToken,
  readSession,
  type Session,
  sameSecret,
  startSession,
} from './session.js';

export interface ConsoleOptions {
  /** The API, called in-process: `(path, init) => app.request(path, init)` of the app the console is mounted in. */
  api: ApiRequest;
  /** Base URL of the Temporal UI (e.g. http://localhost:8233); with it, a run links to its workflow. */
  temporalUiUrl?: string;
}

/** All the console needs of the API's dependencies: the namespace for Temporal links, and the log. */
export type ConsoleDeps = Pick<ApiDeps, 'temporal' | 'log'>;

type ConsoleEnv = { Variables: { session: Session; api: ConsoleApi } };
type Ctx = Context<ConsoleEnv>;

// Everything is served from here: no inline script or style, no third-party origin.
const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
  "form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const RUNS_SHOWN = 30;
const FILES_PER_PAGE = 100;
/** In-process API calls at once for the list page: each asks Postgres and Temporal. */
const LIST_CONCURRENCY = 6;

const RefreshForm = z.object({
  mode: z.enum(['full_refresh', 'fresh_start']),
  strategy: z.enum(['drop', 'swap']).default('drop'),
});

const asStatus = (n: number) => (n >= 400 && n <= 599 ? n : 500) as ContentfulStatusCode;

function render(
  c: Context,
  node: HtmlEscapedString | Promise<HtmlEscapedString>,
  status: ContentfulStatusCode = 200,
) {
  return c.html(html`<!doctype html>${node}`, status);
}

/**
 * A path id for an API URL. Encoding keeps '/' inside the segment; '.' and '..' would still be
 * resolved as dot segments by the URL parser and reach another route, so they are refused.
 */
function seg(id: string): string {
  if (id === '.' || id === '..') {
    throw new ConsoleApiError(404, { detail: 'Not found', error_code: 'NOT_FOUND' });
  }
  return encodeURIComponent(id);
}

async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return out;
}

/**
 * The web console, mounted at /ui. Server-rendered pages over the public API, called in-process
 * with the signed-in token: nothing here reads the database or Temporal, so the console can only
 * ever show or do what that token may through the API.
 */
export function consoleRouter(deps: ConsoleDeps, options: ConsoleOptions) {
  const router = new Hono<ConsoleEnv>();
  const namespace = deps.temporal.options.namespace;

  router.use('*', async (c, next) => {
    await next();
    const h = c.res.headers;
    h.set('content-security-policy', CSP);
    h.set('x-content-type-options', 'nosniff');
    h.set('referrer-policy', 'same-origin');
    // Pages hold tenant data: no shared or back-button caches keep them.
    if (!h.has('cache-control')) h.set('cache-control', 'no-store');
  });

  router.onError((err, c) => {
    const live = c.req.path.endsWith('/live');
    if (err instanceof SessionExpired) {
      endSession(c);
      return live ? c.text('signed out', 401) : c.redirect(ui('/login?expired=1'), 303);
    }
    const csrf = readSession(c)?.csrf;
    if (err instanceof ConsoleApiError) {
      return render(
        c,
        <ErrorPage csrf={csrf} title="Cannot show this page" error={err.error} status={err.status} />,
        asStatus(err.status),
      );
    }
    const requestId = `req_${randomUUID()}`;
    deps.log.error({ err, requestId, path: c.req.path }, 'console error');
    return render(
      c,
      <ErrorPage
        csrf={csrf}
        title="Something went wrong"
        error={{ detail: 'Internal error', error_code: 'INTERNAL_ERROR', request_id: requestId }}
        status={500}
      />,
      500,
    );
  });

  // Public: the assets and the sign-in form. Registered before the session middleware below, whose
  // '*' then only guards the routes that follow it.
  router.get('/assets/:name', (c) => {
    const asset = findAsset(c.req.param('name'));
    if (!asset) return c.text('not found', 404);
    return c.body(asset.body, 200, {
      'content-type': asset.type,
      'cache-control':
        c.req.query('v') === asset.version ? 'public, max-age=31536000, immutable' : 'no-cache',
    });
  });

  router.get('/login', (c) => {
    const q = c.req.query();
    const message =
      q.expired !== undefined
        ? 'Your session ended: the API no longer accepts that token. Sign in again.'
        : q.signed_out !== undefined
          ? 'Signed out.'
          : undefined;
    return render(c, <LoginPage nonce={loginNonce(c)} message={message} failed={q.expired !== undefined} />);
  });

  router.post('/login', async (c) => {
    const form = await c.req.parseBody();
    const again = (message: string, status: ContentfulStatusCode) =>
      render(c, <LoginPage nonce={loginNonce(c)} message={message} failed />, status);
    if (!checkLoginNonce(c, form._csrf)) {
      return again('The sign-in form had expired. Paste the token again.', 403);
    }
    const token = normalizeToken(form.token);
    if (!token) return again('That does not look like an API token.', 400);
    let probe: ApiResult<unknown>;
    try {
      probe = await new ConsoleApi(options.api, token).call('GET', '/ingestions');
    } catch (err) {
      if (err instanceof SessionExpired) return again('The API did not accept that token.', 401);
      throw err;
    }
    // Accepted, but unable to list ingestions (no ingestion:read, or a backing service down).
    if (!probe.ok) return again(`The token was accepted, but: ${probe.error.detail}`, asStatus(probe.status));
    startSession(c, token);
    return c.redirect(ui('/ingestions'), 303);
  });

  const requireSession = createMiddleware<ConsoleEnv>(async (c, next) => {
    const session = readSession(c);
    if (!session) {
      // A poll gets a status its script understands; a page goes to the sign-in form.
      return c.req.path.endsWith('/live') ? c.text('signed out', 401) : c.redirect(ui('/login'), 303);
    }
    if (c.req.method === 'POST') {
      const form = await c.req.parseBody();
      if (!sameSecret(session.csrf, form._csrf)) {
        return render(
          c,
          <ErrorPage
            csrf={session.csrf}
            title="This form has expired"
            error={{
              detail: 'The form did not carry this session’s security token, so nothing was done.',
              error_code: 'CSRF_MISMATCH',
              help: 'Reload the page and try again.',
            }}
            status={403}
          />,
          403,
        );
      }
    }
    c.set('session', session);
    c.set('api', new ConsoleApi(options.api, session.token));
    await next();
  });
  router.use('*', requireSession);

  router.post('/logout', (c) => {
    endSession(c);
    return c.redirect(ui('/login?signed_out=1'), 303);
  });

  router.get('/', (c) => c.redirect(ui('/ingestions'), 303));

  router.get('/ingestions', async (c) => {
    const api = c.get('api');
    const { items } = await api.get<{ items: Ingestion[] }>('/ingestions');
    const summaries = await mapLimit(items, LIST_CONCURRENCY, async (ingestion) => {
      const id = seg(ingestion.id);
      const [runs, schedule] = await Promise.all([
        api.get<Page<Run>>(`/ingestions/${id}/runs?limit=1`),
        api.getOptional<Schedule>(`/ingestions/${id}/schedule`, 404),
      ]);
      return { ingestion, lastRun: runs.items[0] ?? null, schedule };
    });
    return render(c, <IngestionsPage csrf={c.get('session').csrf} items={summaries} />);
  });

  async function loadIngestion(c: Ctx, id: string): Promise<IngestionPageData> {
    const api = c.get('api');
    const base = `/ingestions/${seg(id)}`;
    const fileStatus = fileFilters.find((s) => s === c.req.query('status'));
    const filesQuery = new URLSearchParams({ limit: String(FILES_PER_PAGE) });
    if (fileStatus) filesQuery.set('status', fileStatus);
    const cursor = c.req.query('cursor');
    if (cursor) filesQuery.set('cursor', cursor);
    const runsQuery = new URLSearchParams({ limit: String(RUNS_SHOWN) });
    const runsCursor = c.req.query('runs_cursor');
    if (runsCursor) runsQuery.set('cursor', runsCursor);
    const [ingestion, runs, files, schema, schedule] = await Promise.all([
      api.get<Ingestion>(base),
      api.get<Page<Run>>(`${base}/runs?${runsQuery}`),
      api.get<Page<ProcessedFile>>(`${base}/processed-files?${filesQuery}`),
      api.get<SchemaHistory>(`${base}/schema`),
      api.getOptional<Schedule>(`${base}/schedule`, 404),
    ]);
    return { ingestion, runs, files, schema, schedule, fileStatus };
  }

  /** A refused action shown on the ingestion's page, where the operator pressed the button. */
  async function ingestionWithError(c: Ctx, id: string, failed: Extract<ApiResult<unknown>, { ok: false }>) {
    const data = await loadIngestion(c, id);
    return render(
      c,
      <IngestionPage
        csrf={c.get('session').csrf}
        data={data}
        error={{ error: failed.error, status: failed.status }}
      />,
      asStatus(failed.status),
    );
  }

  router.get('/ingestions/:id', async (c) => {
    const data = await loadIngestion(c, c.req.param('id'));
    return render(c, <IngestionPage csrf={c.get('session').csrf} data={data} />);
  });

  router.post('/ingestions/:id/run', async (c) => {
    const id = c.req.param('id');
    const started = await c.get('api').post<Run>(`/ingestions/${seg(id)}/run`);
    if (!started.ok) return ingestionWithError(c, id, started);
    return c.redirect(ui(`/runs/${seg(started.body.id)}`), 303);
  });

  async function refreshRequest(c: Ctx, dryRun: boolean) {
    const id = c.req.param('id') ?? '';
    const form = RefreshForm.safeParse(await c.req.parseBody());
    if (!form.success) {
      throw new ConsoleApiError(400, {
        detail: 'Choose a refresh mode (full refresh or fresh start) and a strategy (drop or swap).',
        error_code: 'VALIDATION_ERROR',
      });
    }
    const { mode } = form.data;
    // Swap only exists for a full refresh; a fresh start always drops.
    const strategy = mode === 'full_refresh' ? form.data.strategy : 'drop';
    const path = `/ingestions/${seg(id)}/${mode === 'full_refresh' ? 'full-refresh' : 'fresh-start'}`;
    const body = { confirm: true, dry_run: dryRun, ...(mode === 'full_refresh' ? { strategy } : {}) };
    return { id, mode, strategy, path, body };
  }

  router.post('/ingestions/:id/refresh/preview', async (c) => {
    const { id, mode, strategy, path, body } = await refreshRequest(c, true);
    const api = c.get('api');
    const preview = await api.post<DryRun>(path, body);
    if (!preview.ok) return ingestionWithError(c, id, preview);
    const ingestion = await api.get<Ingestion>(`/ingestions/${seg(id)}`);
    return render(
      c,
      <PreviewPage
        csrf={c.get('session').csrf}
        ingestion={ingestion}
        mode={mode}
        strategy={strategy}
        preview={preview.body}
      />,
    );
  });

  router.post('/ingestions/:id/refresh/confirm', async (c) => {
    const { id, path, body } = await refreshRequest(c, false);
    const done = await c.get('api').post<RefreshAccepted>(path, body);
    // A partial failure (500) still names its operation, which resumes by itself: follow it there.
    const operationId = done.ok
      ? done.body.operation_id
      : typeof done.body.operation_id === 'string'
        ? done.body.operation_id
        : undefined;
    if (operationId) return c.redirect(ui(`/operations/${seg(operationId)}`), 303);
    if (!done.ok) return ingestionWithError(c, id, done);
    return c.redirect(ui(`/ingestions/${seg(id)}`), 303);
  });

  const temporalUrl = (run: Run) =>
    options.temporalUiUrl
      ? temporalWorkflowUrl(options.temporalUiUrl, namespace, run.workflow_id)
      : undefined;

  router.get('/runs/:id', async (c) => {
    const api = c.get('api');
    const run = await api.get<Run>(`/runs/${seg(c.req.param('id'))}`);
    const ingestion = await api.get<Ingestion>(`/ingestions/${seg(run.ingestion_id)}`);
    return render(
      c,
      <RunPage csrf={c.get('session').csrf} run={run} ingestion={ingestion} temporalUrl={temporalUrl(run)} />,
    );
  });

  router.get('/runs/:id/live', async (c) => {
    const run = await c.get('api').get<Run>(`/runs/${seg(c.req.param('id'))}`);
    return c.html(<RunLive run={run} />);
  });

  router.get('/operations/:id', async (c) => {
    const api = c.get('api');
    const op = await api.get<Operation>(`/operations/${seg(c.req.param('id'))}`);
    const ingestion = await api.getOptional<Ingestion>(`/ingestions/${seg(op.ingestion_id)}`, 404);
    return render(c, <OperationPage csrf={c.get('session').csrf} op={op} ingestion={ingestion} />);
  });

  router.get('/operations/:id/live', async (c) => {
    const op = await c.get('api').get<Operation>(`/operations/${seg(c.req.param('id'))}`);
    return c.html(<OperationLive op={op} />);
  });

  router.get('/pending-deletions', async (c) => {
    const includeDone = c.req.query('include_done') === 'true';
    const { items } = await c
      .get('api')
      .get<{ items: PendingDeletion[] }>(`/pending-deletions${includeDone ? '?include_done=true' : ''}`);
    return render(c, <DeletionsPage csrf={c.get('session').csrf} items={items} includeDone={includeDone} />);
  });

  router.get('/audit', async (c) => {
    const ingestionId = c.req.query('ingestion_id') || undefined;
    const query = new URLSearchParams({ limit: '200' });
    if (ingestionId) query.set('ingestion_id', ingestionId);
    const { items } = await c.get('api').get<{ items: AuditEvent[] }>(`/audit-events?${query}`);
    return render(c, <AuditPage csrf={c.get('session').csrf} items={items} ingestionId={ingestionId} />);
  });

  return router;
}
