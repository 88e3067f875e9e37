import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { gunzipSync } from 'node:zlib';
import { type ServerType, serve } from '@hono/node-server';
import type { z } from '@hono/zod-openapi';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { seedExamples } from '../../src/api/docs-examples.js';
import { statusOf } from '../../src/api/errors.js';
import { errorCodes } from '../../src/domain/errors.js';
import { launchChromium, missingChromium } from '../helpers/browser.js';
import { type Harness, jsonLines, startHarness } from '../helpers/harness.js';

/**
 * The API reference at /docs (Swagger UI from the installed swagger-ui-dist, over /openapi.json):
 * what the server sends, what the document says, and the page in a real Chromium running a request.
 */

interface Media {
  schema?: unknown;
  examples?: Record<string, { summary: string; value: unknown }>;
}
interface Operation {
  requestBody?: { content?: Record<string, Media> };
  responses: Record<string, { content?: Record<string, Media> }>;
}
interface Document {
  info: { description: string };
  security: unknown[];
  components: { securitySchemes: Record<string, { type: string; scheme: string }> };
  paths: Record<string, Record<string, Operation>>;
}

let h: Harness;
let doc: Document;
beforeAll(async () => {
  h = await startHarness();
  doc = (await (await h.app.request('/openapi.json')).json()) as Document;
});
afterAll(async () => {
  await h?.close();
});

const swaggerUiDir = createRequire(import.meta.url)
  .resolve('swagger-ui-dist/package.json')
  .replace(/package\.json$/, '');

/** The `/docs/assets/...` URLs the page links (stylesheets, icons, scripts). */
async function linkedAssets(): Promise<string[]> {
  const html = await (await h.app.request('/docs')).text();
  return [...html.matchAll(/(?:href|src)="(\/docs\/assets\/[^"]+)"/g)].map((m) => m[1]!);
}

const expectedType: Record<string, string> = {
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  png: 'image/png',
};
const extensionOf = (url: string) => new URL(url, 'http://x').pathname.split('.').pop()!;

describe('API reference page (/docs)', () => {
  it('is served without a token, under a strict CSP, with Swagger UI from this origin and no inline script', async () => {
    const res = await h.app.request('/docs');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/html');
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).not.toContain('unsafe-eval');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');

    const html = await res.text();
    expect(html).toMatch(/<script src="\/docs\/assets\/swagger-ui-bundle\.js\?v=[0-9a-f]{12}"><\/script>/);
    expect(html).toMatch(/<script src="\/docs\/assets\/init\.js\?v=[0-9a-f]{12}"><\/script>/);
    expect(html).toMatch(/<link rel="stylesheet" href="\/docs\/assets\/swagger-ui\.css\?v=[0-9a-f]{12}">/);
    expect(html).toContain('data-spec-url="/openapi.json"');
    // Every script has a src (the CSP would block an inline one), and nothing comes from elsewhere.
    expect(html.match(/<script(?![^>]*\ssrc=)[^>]*>/g)).toBeNull();
    expect(html).not.toMatch(/(?:src|href)="(?:https?:)?\/\//);
  });

  it('serves each linked asset with its content type: the installed package’s own bytes, or gzip when asked', async () => {
    const assets = await linkedAssets();
    expect(assets.map((a) => a.replace(/\?.*$/, '')).sort()).toEqual([
      '/docs/assets/favicon-16x16.png',
      '/docs/assets/favicon-32x32.png',
      '/docs/assets/index.css',
      '/docs/assets/init.js',
      '/docs/assets/swagger-ui-bundle.js',
      '/docs/assets/swagger-ui.css',
    ]);
    for (const url of assets) {
      const plain = await h.app.request(url);
      expect(plain.status, url).toBe(200);
      expect(plain.headers.get('content-type'), url).toBe(expectedType[extensionOf(url)]);
      expect(plain.headers.get('content-encoding'), url).toBeNull();
      expect(plain.headers.get('x-content-type-options'), url).toBe('nosniff');
      // Linked with its version: cacheable for good.
      expect(plain.headers.get('cache-control'), url).toContain('immutable');
      const body = Buffer.from(await plain.arrayBuffer());
      expect(body.length, url).toBeGreaterThan(0);
      if (extensionOf(url) === 'png') continue;

      const zipped = await h.app.request(url, { headers: { 'accept-encoding': 'gzip, deflate, br' } });
      expect(zipped.status, url).toBe(200);
      expect(zipped.headers.get('content-encoding'), url).toBe('gzip');
      expect(zipped.headers.get('content-type'), url).toBe(expectedType[extensionOf(url)]);
      expect(zipped.headers.get('vary'), url).toContain('Accept-Encoding');
      const zippedBody = Buffer.from(await zipped.arrayBuffer());
      expect(zippedBody.length, url).toBeLessThan(body.length);
      expect(gunzipSync(zippedBody).equals(body), url).toBe(true);

      const refused = await h.app.request(url, { headers: { 'accept-encoding': 'gzip;q=0' } });
      expect(refused.headers.get('content-encoding'), url).toBeNull();
    }
    const bundle = assets.find((a) => a.includes('swagger-ui-bundle.js'))!;
    const served = Buffer.from(await (await h.app.request(bundle)).arrayBuffer());
    expect(served.equals(readFileSync(`${swaggerUiDir}swagger-ui-bundle.js`))).toBe(true);
  });

  it('answers 304 to a matching ETag, and 200 to a stale one', async () => {
    const url = (await linkedAssets()).find((a) => a.includes('swagger-ui.css'))!;
    const first = await h.app.request(url);
    const etag = first.headers.get('etag');
    expect(etag).toMatch(/^W\/"[0-9a-f]{12}"$/);
    const again = await h.app.request(url, { headers: { 'if-none-match': etag! } });
    expect(again.status).toBe(304);
    expect(again.headers.get('etag')).toBe(etag);
    expect(await again.text()).toBe('');
    const stale = await h.app.request(url, { headers: { 'if-none-match': 'W/"000000000000"' } });
    expect(stale.status).toBe(200);
    // Without its version in the URL, a cache must revalidate.
    const unversioned = await h.app.request(url.replace(/\?.*$/, ''));
    expect(unversioned.headers.get('cache-control')).toBe('no-cache');
  });

  it('serves nothing but the allow-listed files under /docs/assets', async () => {
    for (const path of [
      '/docs/assets/../package.json',
      '/docs/assets/swagger-ui-bundle.js.map',
      '/docs/assets/%2e%2e%2fpackage.json',
      '/docs/assets/..%2f..%2f..%2fpackage.json',
      '/docs/assets/index.html',
      '/docs/assets/swagger-initializer.js',
      '/docs/assets/package.json',
      '/docs/assets/__proto__',
      '/docs/assets/',
    ]) {
      const res = await h.app.request(path);
      expect(res.status, path).toBe(404);
      expect(await res.text(), path).not.toContain('"name": "swagger-ui-dist"');
    }
  });
});

describe('OpenAPI document (/openapi.json)', () => {
  it('is public, declares the bearer scheme for Authorize, and every operation in it still needs a token', async () => {
    const res = await h.app.request('/openapi.json');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('application/json');
    expect(doc.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(doc.security).toEqual([{ bearer: [] }]);

    const operations = Object.entries(doc.paths).flatMap(([path, item]) =>
      Object.keys(item).map((method) => ({ method: method.toUpperCase(), path })),
    );
    expect(operations.length).toBeGreaterThan(30);
    for (const { method, path } of operations) {
      const res = await h.app.request(path.replaceAll(/\{[^}]+\}/g, 'x'), { method });
      expect(res.status, `${method} ${path}`).toBe(401);
    }
  });

  it('carries seed 001’s and seed 004’s bodies as examples of the refresh operations', () => {
    const op = doc.paths['/api/v1/ingestions/{id}/full-refresh']!.post!;
    const request = op.requestBody!.content!['application/json']!.examples!;
    expect(request.refresh!.value).toEqual({ confirm: true, auto_run: true, dry_run: false });
    // Seed 004: the atomic swap, with its 60-second grace period.
    expect(request.swap!.value).toMatchObject({ strategy: 'swap', grace_period_seconds: 60 });

    const accepted = op.responses['202']!.content!['application/json']!.examples!.accepted!.value as {
      ingestion_id: string;
      run_id: string;
      impact: Record<string, number>;
      operations: { operation: string; details: Record<string, unknown> }[];
    };
    // Seed 001's figures: 1,247 files, 450.2 GB, $125.50, table raw.sales_data of 12,450,000 rows.
    expect(accepted.ingestion_id).toBe('ing-abc123');
    expect(accepted.run_id).toBe('run-xyz789');
    expect(accepted.impact).toMatchObject({
      files_to_process: 1247,
      estimated_data_size_gb: 450.2,
      estimated_cost_usd: 125.5,
    });
    expect(accepted.operations.map((s) => s.operation)).toEqual([
      'table_dropped',
      'processed_files_cleared',
      'run_triggered',
    ]);
    expect(accepted.operations[0]!.details).toMatchObject({
      table_name: 'raw.sales_data',
      row_count: 12450000,
    });

    const dryRun = op.responses['200']!.content!['application/json']!.examples!.dry_run!.value;
    expect(dryRun).toMatchObject({ status: 'dry_run', message: 'Preview of operations (not executed)' });
    for (const status of ['400', '404', '409', '500'])
      expect(
        Object.keys(op.responses[status]!.content!['application/json']!.examples ?? {}),
        status,
      ).not.toEqual([]);
    expect(
      doc.paths['/api/v1/ingestions/{id}/table']!.delete!.responses['200']!.content!['application/json']!
        .examples,
    ).toHaveProperty('did_not_exist');
  });

  it('has examples that match their routes’ own schemas', () => {
    type Route = {
      method: string;
      path: string;
      request?: { body?: { content: Record<string, { schema: z.ZodType }> } };
      responses: Record<string, { content?: Record<string, { schema: z.ZodType }> }>;
    };
    const routes = new Map<string, Route>();
    for (const def of h.app.openAPIRegistry.definitions) {
      if (def.type !== 'route') continue;
      const route = def.route as unknown as Route;
      routes.set(`${route.method.toUpperCase()} ${route.path}`, route);
    }

    let checked = 0;
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item)) {
        const route = routes.get(`${method.toUpperCase()} ${path}`)!;
        const requestExamples = op.requestBody?.content?.['application/json']?.examples ?? {};
        for (const [name, example] of Object.entries(requestExamples)) {
          const schema = route.request!.body!.content['application/json']!.schema;
          const parsed = schema.safeParse(example.value);
          expect(parsed.error?.message, `${method} ${path} request ${name}`).toBeUndefined();
          checked++;
        }
        for (const [status, response] of Object.entries(op.responses)) {
          for (const [name, example] of Object.entries(
            response.content?.['application/json']?.examples ?? {},
          )) {
            const schema = route.responses[status]!.content!['application/json']!.schema;
            const parsed = schema.safeParse(example.value);
            expect(parsed.error?.message, `${method} ${path} ${status} ${name}`).toBeUndefined();
            // Nothing the schema does not know (an object schema would strip it silently).
            expect(parsed.data, `${method} ${path} ${status} ${name}`).toEqual(example.value);
            checked++;
          }
        }
      }
    }
    expect(checked).toBeGreaterThan(30);

    // An entry whose route is missing attaches nothing; only routes still being built may be missing.
    const awaited = [
      'POST /api/v1/refresh', // seed 004's catalog refresh
    ];
    const missing = Object.keys(seedExamples).filter((key) => !routes.has(key));
    expect(missing.filter((key) => !awaited.includes(key))).toEqual([]);
  });

  it('has examples with the fields the service really answers (a dry run of a real ingestion)', async () => {
    const ingestion = await h.createIngestion({ 'a.jsonl': jsonLines(0, 5) }, {}, 'docs');
    const real = await h.api<Record<string, unknown>>(
      'POST',
      `/api/v1/ingestions/${ingestion.id}/full-refresh`,
      { confirm: true, dry_run: true },
    );
    expect(real.status).toBe(200);
    const example = doc.paths['/api/v1/ingestions/{id}/full-refresh']!.post!.responses['200']!.content![
      'application/json'
    ]!.examples!.dry_run!.value as Record<string, unknown>;
    expect(Object.keys(real.body).sort()).toEqual(Object.keys(example).sort());
    const steps = (body: Record<string, unknown>) =>
      (body.would_perform as { operation: string; details: object }[]).map((s) => [
        s.operation,
        Object.keys(s.details).sort(),
      ]);
    expect(steps(real.body)).toEqual(steps(example));
    expect(Object.keys(real.body.impact as object).sort()).toEqual(
      Object.keys(example.impact as object).sort(),
    );
  });

  it('describes every error code with its HTTP status in a table', () => {
    const description = doc.info.description;
    expect(description).toContain('| Status | `error_code` | Meaning |');
    for (const code of errorCodes) expect(description).toContain(`| ${statusOf[code]} | \`${code}\` | `);
    const rows = description.split('\n').filter((line) => /^\| \d{3} \| `/.test(line));
    expect(rows).toHaveLength(errorCodes.length);
    expect(description).toContain('Authorization: Bearer <token>');
  });
});

const WAIT = { timeout: 60_000 };

describe('API reference in a real browser', () => {
  let server: ServerType | undefined;
  let base: string;
  let browser: Browser | undefined;
  let ingestionId: string;
  /** Script errors and CSP violations: the page must run clean under its policy. */
  const pageErrors: string[] = [];

  beforeAll(async () => {
    if (missingChromium) return;
    const port = await new Promise<number>((resolve) => {
      server = serve({ fetch: h.app.fetch, hostname: '127.0.0.1', port: 0 }, (info) => resolve(info.port));
    });
    base = `http://127.0.0.1:${port}`;
    browser = await launchChromium();
    ingestionId = (await h.createIngestion({ 'a.jsonl': jsonLines(0, 3) }, {}, 'swagger')).id;
  });
  beforeEach(() => {
    if (missingChromium) throw new Error(missingChromium);
  });
  afterAll(async () => {
    await browser?.close();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  });

  /** A fresh browser profile (no token kept from another test) on /docs, once Swagger UI has rendered. */
  async function openDocs(): Promise<Page> {
    const context = await browser!.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    page.on('pageerror', (err) => pageErrors.push(String(err)));
    page.on('console', (msg) => {
      // Chromium logs every 4xx answer as an error; the 401 provoked on purpose is not a fault.
      if (msg.type() === 'error' && !msg.text().startsWith('Failed to load resource: the server responded'))
        pageErrors.push(msg.text());
    });
    await page.goto(`${base}/docs`);
    await page.locator('.swagger-ui .info .title').waitFor(WAIT);
    return page;
  }

  /** Expands GET /api/v1/ingestions, presses Try it out and Execute; returns what the page shows. */
  async function executeListIngestions(page: Page) {
    const block = page.locator('#operations-ingestions-get_api_v1_ingestions');
    await block.locator('.opblock-summary-control').click();
    await block.locator('button.try-out__btn').click();
    const [response] = await Promise.all([
      page.waitForResponse((r) => new URL(r.url()).pathname === '/api/v1/ingestions', WAIT),
      block.locator('button.execute').click(),
    ]);
    const status = block.locator('.live-responses-table tbody .response-col_status');
    await status.waitFor(WAIT);
    const shownBody = await block.locator('.live-responses-table .highlight-code code').first().textContent();
    return {
      response,
      shownStatus: ((await status.textContent()) ?? '').trim().slice(0, 3),
      shownBody: JSON.parse(shownBody ?? 'null') as unknown,
    };
  }

  it('renders the document: the error codes table and the operations by resource', async () => {
    const page = await openDocs();
    expect(await page.locator('.swagger-ui .info table tbody tr').count()).toBe(errorCodes.length);
    await page.locator('#operations-ingestions-get_api_v1_ingestions').waitFor(WAIT);
    await page.locator('#operations-ingestions-post_api_v1_ingestions__id__full_refresh').waitFor(WAIT);
    expect(pageErrors).toEqual([]);
    await page.context().close();
  });

  it('runs GET /api/v1/ingestions with the token given to Authorize, and shows the 200 and the ingestion', async () => {
    const page = await openDocs();
    await page.locator('.auth-wrapper button.authorize').click();
    const dialog = page.locator('.modal-ux');
    await dialog.locator('input').first().fill(h.token);
    await dialog.locator('button.authorize').click();
    await dialog.locator('button:has-text("Logout")').waitFor(WAIT);
    await dialog.locator('button.btn-done').click();

    const { response, shownStatus, shownBody } = await executeListIngestions(page);
    expect(response.request().headers().authorization).toBe(`Bearer ${h.token}`);
    expect(response.status()).toBe(200);
    expect(shownStatus).toBe('200');
    const created = await h.api('GET', `/api/v1/ingestions/${ingestionId}`);
    expect(created.status).toBe(200);
    // The list shows each ingestion as GET /ingestions/{id} does, less its schedules.
    const { schedule: _s, refresh_schedule: _r, ...listed } = created.body;
    expect((shownBody as { items: unknown[] }).items).toContainEqual(listed);
    expect(pageErrors).toEqual([]);
    await page.context().close();
  });

  it('without Authorize, the same request is sent without a token and refused (401)', async () => {
    const page = await openDocs();
    const { response, shownStatus, shownBody } = await executeListIngestions(page);
    expect(response.request().headers().authorization).toBeUndefined();
    expect(shownStatus).toBe('401');
    expect(shownBody).toMatchObject({ error_code: 'UNAUTHORIZED' });
    expect(pageErrors).toEqual([]);
    await page.context().close();
  });
});
