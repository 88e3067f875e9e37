import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { type ServerType, serve } from '@hono/node-server';
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createToken } from '../../src/auth/tokens.js';
import { createLogger } from '../../src/lib/logger.js';
import { consoleRouter } from '../../src/ui/router.js';
import { launchChromium, missingChromium } from '../helpers/browser.js';
import { type Harness, jsonLines, type RunBody, startHarness } from '../helpers/harness.js';

/**
 * The web console in a real Chromium against the real stack: the API app served on a socket (the
 * console mounted in it by createApp), a real worker on a real Temporal, Postgres and MinIO.
 */

const SCREENSHOT = path.resolve('docs/console-ingestion.png');
const WAIT = { timeout: 60_000 };

let h: Harness;
let server: ServerType | undefined;
let base: string;
let browser: Browser | undefined;
let context: BrowserContext;
let page: Page;
/** Script errors and CSP violations: the console must run clean. */
const pageErrors: string[] = [];

let ingestion: { id: string; bucket: string; table: string };
let firstRunId: string;

beforeAll(async () => {
  if (missingChromium) return;
  h = await startHarness();
  const port = await new Promise<number>((resolve) => {
    server = serve({ fetch: h.app.fetch, hostname: '127.0.0.1', port: 0 }, (info) => resolve(info.port));
  });
  base = `http://127.0.0.1:${port}`;
  browser = await launchChromium();
  context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  page = await newPage(context);

  ingestion = await h.createIngestion(
    {
      'a.jsonl': jsonLines(0, 50),
      'b.jsonl': jsonLines(50, 50),
      'bad.jsonl': '{"id": 1000}\n{"id": 1001, oops}\n',
    },
    { pattern: '*.jsonl' },
    'ui',
  );
  const schedule = await h.api('PUT', `/api/v1/ingestions/${ingestion.id}/schedule`, {
    cron: '0 3 1 1 *',
    timezone: 'UTC',
  });
  expect(schedule.status).toBe(200);
});

beforeEach(() => {
  if (missingChromium) throw new Error(missingChromium);
});

afterAll(async () => {
  if (h && ingestion) await h.api('DELETE', `/api/v1/ingestions/${ingestion.id}/schedule`);
  await browser?.close();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  await h?.close();
});

async function newPage(ctx: BrowserContext): Promise<Page> {
  const p = await ctx.newPage();
  p.on('pageerror', (err) => pageErrors.push(String(err)));
  p.on('console', (msg) => {
    // Chromium logs every 4xx page as an error; the refusals this test provokes on purpose are not faults.
    if (msg.type() === 'error' && !msg.text().startsWith('Failed to load resource: the server responded'))
      pageErrors.push(msg.text());
  });
  return p;
}

async function signIn(p: Page, token: string): Promise<void> {
  await p.goto(`${base}/ui`);
  await p.waitForURL('**/ui/login');
  await p.fill('#token', token);
  await p.click('button:has-text("Sign in")');
  await p.waitForURL('**/ui/ingestions');
}

/** A locator's text as the DOM has it (Playwright waits for the element first). */
async function text(l: Locator): Promise<string> {
  return (await l.textContent()) ?? '';
}

const ingestionUrl = () => `${base}/ui/ingestions/${ingestion.id}`;

async function cookieHeader(): Promise<string> {
  return (await context.cookies()).map((c) => `${c.name}=${c.value}`).join('; ');
}

async function runsOf(id: string) {
  return (await h.api<{ items: RunBody[] }>('GET', `/api/v1/ingestions/${id}/runs`)).body.items;
}

describe('web console (/ui)', () => {
  it('is served by the API app without a bearer token, and sends a signed-out browser to sign in', async () => {
    const login = await h.app.request('/ui/login');
    expect(login.status).toBe(200);
    expect(login.headers.get('content-type')).toContain('text/html');
    expect(login.headers.get('content-security-policy')).toContain("script-src 'self'");
    const list = await h.app.request('/ui/ingestions');
    expect(list.status).toBe(303);
    expect(list.headers.get('location')).toBe('/ui/login');
    // The API itself still wants its bearer token.
    expect((await h.app.request('/api/v1/ingestions')).status).toBe(401);
  });

  it('refuses a token the API does not accept', async () => {
    await page.goto(`${base}/ui/login`);
    await page.fill('#token', 'al_not-a-real-token');
    await page.click('button:has-text("Sign in")');
    await page.locator('#login-message').waitFor();
    expect(await text(page.locator('#login-message'))).toContain('did not accept');
    expect((await context.cookies()).some((c) => c.name === 'autoloader_console')).toBe(false);
  });

  it('signs in, lists the ingestion with its schedule, runs it from the button and shows a failed file’s error', async () => {
    // A name written to attack the page: it must show as text and run nothing.
    const hostile = '<img src=x onerror="window.__xss=1">';
    const bucket = await h.createBucket();
    const created = await h.api('POST', '/api/v1/ingestions', {
      name: hostile,
      connection_id: await h.createS3Connection(),
      source: { bucket, format: 'jsonl' },
      destination: `raw.ui_hostile_${bucket.replaceAll('-', '_').slice(2, 14)}`,
    });
    expect(created.status).toBe(201);

    await signIn(page, h.token);
    const session = (await context.cookies()).find((c) => c.name === 'autoloader_console');
    expect(session).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/ui' });

    const row = page.locator(`tr[data-ingestion-id="${ingestion.id}"]`);
    await row.waitFor();
    expect(await text(row)).toContain('never run');
    expect(await text(row.locator('td.schedule'))).toContain('0 3 1 1 *');
    expect(await text(row.locator('td.next-tick'))).toMatch(/^\d{4}-01-01 03:00:00 UTC$/);
    expect(await text(page.locator('#ingestions'))).toContain(hostile);
    expect(await page.locator('#ingestions img').count()).toBe(0);
    expect(await page.evaluate('window.__xss')).toBeUndefined();

    await row.locator('a').first().click();
    await page.waitForURL(ingestionUrl());
    expect(await text(page.locator('#runs-section'))).toContain('No runs yet');
    await page.click('button:has-text("Run now")');
    await page.waitForURL('**/ui/runs/**');
    firstRunId = page.url().split('/').at(-1)!;
    // Live: the page updates itself until the run has ended.
    await page.locator('#run-live[data-status="PARTIAL_SUCCESS"]').waitFor(WAIT);
    expect(await text(page.locator('#records-written'))).toBe('100');
    expect(await text(page.locator('[data-stat="files_failed"]'))).toBe('1');
    // This app has no Temporal UI configured: no link (the link itself is checked below).
    expect(await page.locator('#temporal-link').count()).toBe(0);

    await page.click('a:has-text("See the failed files")');
    await page.waitForURL(`${ingestionUrl()}?status=FAILED#files`);
    const files = page.locator('#files-table tbody tr');
    expect(await files.count()).toBe(1);
    const bad = page.locator('tr[data-file$="bad.jsonl"]');
    const pre = bad.locator('details.error pre');
    expect(await pre.isVisible()).toBe(false);
    await bad.locator('details.error summary').click();
    await pre.waitFor({ state: 'visible' });
    const api = await h.api<{ items: { error_message: string }[] }>(
      'GET',
      `/api/v1/ingestions/${ingestion.id}/processed-files?status=FAILED`,
    );
    expect(api.body.items[0]!.error_message.length).toBeGreaterThan(0);
    expect(await text(pre)).toBe(api.body.items[0]!.error_message);

    // The rest of the page: the chart, the runs, the schema history.
    await page.click('.filters a:text-is("all")');
    await page.waitForURL(`${ingestionUrl()}#files`);
    expect(await page.locator('#files-table tbody tr').count()).toBe(3);
    expect(await page.locator('svg.chart rect.bar').count()).toBe(1);
    expect(await text(page.locator(`#runs tr[data-run-id="${firstRunId}"]`))).toContain('PARTIAL_SUCCESS');
    const v1 = await text(page.locator('#schema tr[data-schema-version="1"]'));
    for (const col of ['id', 'user', 'amount', 'ts', 'tags']) expect(v1).toContain(col);
  });

  it('links a run to its workflow in the Temporal UI when one is configured', async () => {
    const temporalUiUrl = 'http://temporal-ui.test:8233/';
    const withLink = consoleRouter(
      { temporal: h.client, log: createLogger('silent', 'test') },
      { api: (p, init) => h.app.request(p, init), temporalUiUrl },
    );
    const res = await withLink.request(`/runs/${firstRunId}`, { headers: { cookie: await cookieHeader() } });
    expect(res.status).toBe(200);
    const run = await h.api<{ workflow_id: string }>('GET', `/api/v1/runs/${firstRunId}`);
    expect(await res.text()).toContain(
      `href="http://temporal-ui.test:8233/namespaces/default/workflows/${encodeURIComponent(run.body.workflow_id)}"`,
    );
  });

  it('shows live progress while a run is held up, and a second run as a readable 409', async () => {
    await h.putObject(ingestion.bucket, 'c.jsonl', jsonLines(100, 50));
    const lock = await h.lockTable(ingestion.table);
    try {
      await page.goto(ingestionUrl());
      await page.click('button:has-text("Run now")');
      await page.waitForURL('**/ui/runs/**');
      const runId = page.url().split('/').at(-1)!;
      await page.locator('#run-live[data-status="RUNNING"] #progress progress').waitFor();

      await page.goto(ingestionUrl());
      const [refused] = await Promise.all([
        page.waitForResponse((r) => r.url().endsWith('/run') && r.request().method() === 'POST'),
        page.click('button:has-text("Run now")'),
      ]);
      expect(refused.status()).toBe(409);
      const callout = page.locator('[data-error-code="RUN_IN_PROGRESS"]');
      await callout.waitFor();
      const message = await text(callout);
      expect(message).toContain('Another run or operation is in progress');
      expect(message).not.toMatch(/\bat .+\.(ts|js):\d+/);

      await callout.locator(`a:has-text("${runId}")`).click();
      await page.locator('#run-live[data-status="RUNNING"]').waitFor();
      // The page must change by itself: no navigation from here on.
      await page.evaluate('window.__stayed = true');
      await lock.release();
      await page.locator('#run-live:not([data-status="RUNNING"])').waitFor(WAIT);
      expect(await page.evaluate('window.__stayed')).toBe(true);
      const finished = (await h.api<RunBody>('GET', `/api/v1/runs/${runId}`)).body;
      expect(finished.status).not.toBe('RUNNING');
      expect(await page.locator('#run-live').getAttribute('data-status')).toBe(finished.status);
      expect(await text(page.locator('#records-written'))).toBe(
        finished.records_written.toLocaleString('en-US'),
      );
    } finally {
      await lock.release();
    }
  });

  it('previews a full refresh, changes nothing until it is confirmed, then shows the operation and its run', async () => {
    // The data is fixed at the source; the refresh reloads all of it.
    await h.putObject(ingestion.bucket, 'bad.jsonl', jsonLines(150, 50));
    const runsBefore = (await runsOf(ingestion.id)).length;

    await page.goto(ingestionUrl());
    await page.selectOption('#full-refresh-form select[name="strategy"]', 'swap');
    await page.click('#full-refresh-form button');
    await page.locator('#preview-status').waitFor(WAIT);
    expect(await text(page.locator('#preview-status'))).toContain('Nothing has changed yet');
    const steps = await page
      .locator('#would-perform tr[data-step]')
      .evaluateAll((rows) => rows.map((r) => r.getAttribute('data-step')));
    expect(steps).toEqual(['run_triggered', 'table_swapped', 'deletion_scheduled']);
    expect(await text(page.locator('[data-impact="files_to_process"]'))).toBe('4');
    expect(await text(page.locator('#warnings'))).toContain('reprocess ALL 4 files');
    expect((await runsOf(ingestion.id)).length).toBe(runsBefore);

    await page.click('#confirm-refresh');
    await page.waitForURL('**/ui/operations/**');
    await page.locator('#operation-live[data-status="success"]').waitFor(WAIT);
    const done = await page
      .locator('#steps tr[data-step]')
      .evaluateAll((rows) => rows.map((r) => r.getAttribute('data-step')));
    expect(done).toEqual(['run_triggered', 'table_swapped', 'deletion_scheduled']);

    await page.click('#operation-run');
    await page.locator('#run-live[data-status="SUCCESS"]').waitFor(WAIT);
    expect(await text(page.locator('#records-written'))).toBe('200');
    const [count] = await h.sql.unsafe<{ n: number }[]>(
      `select count(*)::int as n from raw.${ingestion.table}`,
    );
    expect(count!.n).toBe(200);

    // The replaced table waits out its grace period; the audit log has the preview and the refresh.
    await page.click('nav a:has-text("Pending deletions")');
    const deletion = page.locator('#deletions tbody tr', { hasText: ingestion.id });
    await deletion.waitFor();
    expect(await text(deletion)).toContain('pending');
    await page.click('nav a:has-text("Audit log")');
    await page.locator('#audit').waitFor();
    expect(await page.locator('#audit tr[data-action="full_refresh"][data-result="dry_run"]').count()).toBe(
      1,
    );
    expect(
      await page.locator('#audit tr[data-action="full_refresh"]:not([data-result="dry_run"])').count(),
    ).toBe(1);

    await page.goto(ingestionUrl());
    expect(await page.locator('svg.chart rect.bar').count()).toBe((await runsOf(ingestion.id)).length);
    if (process.env.UPDATE_SCREENSHOTS === '1') {
      await mkdir(path.dirname(SCREENSHOT), { recursive: true });
      await page.screenshot({ path: SCREENSHOT, fullPage: true });
    }
  });

  it('shows a token without ingestion:refresh a readable refusal instead of a preview', async () => {
    const viewer = await createToken(h.db, {
      tenantId: h.tenantId,
      name: 'viewer',
      subject: 'viewer@example.com',
      permissions: ['ingestion:read', 'ingestion:run'],
    });
    const ctx = await browser!.newContext();
    try {
      const p = await newPage(ctx);
      await signIn(p, viewer.token);
      await p.goto(ingestionUrl());
      await p.click('button:has-text("Fresh start")');
      const callout = p.locator('[data-error-code="INSUFFICIENT_PERMISSIONS"]');
      await callout.waitFor(WAIT);
      expect(await text(callout)).toContain('Your token is not allowed to do this');
      expect(await p.locator('#would-perform').count()).toBe(0);
    } finally {
      await ctx.close();
    }
  });

  it('does nothing for a form without the session’s CSRF token, and signs out', async () => {
    const runsBefore = (await runsOf(ingestion.id)).length;
    const forged = await h.app.request(`/ui/ingestions/${ingestion.id}/run`, {
      method: 'POST',
      headers: { cookie: await cookieHeader(), 'content-type': 'application/x-www-form-urlencoded' },
      body: '_csrf=forged',
    });
    expect(forged.status).toBe(403);
    expect(await forged.text()).toContain('This form has expired');
    expect((await runsOf(ingestion.id)).length).toBe(runsBefore);

    await page.goto(`${base}/ui/ingestions`);
    await page.click('button:has-text("Sign out")');
    await page.waitForURL('**/ui/login?signed_out=1');
    expect((await context.cookies()).some((c) => c.name === 'autoloader_console')).toBe(false);
    await page.goto(`${base}/ui/ingestions`);
    await page.waitForURL('**/ui/login');
    expect(pageErrors).toEqual([]);
  });
});
