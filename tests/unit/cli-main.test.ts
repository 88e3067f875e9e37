import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ApiClient } from '../../src/cli/client.js';
import { main } from '../../src/cli/main.js';
import type { Io } from '../../src/cli/output.js';
import { createProgressReporter } from '../../src/cli/progress.js';
import { waitForOperation } from '../../src/cli/wait.js';

/** A stand-in API: canned answers per "METHOD path", every request recorded. */
type Answer = { status: number; body?: unknown; raw?: string };
let answers: Record<string, Answer> = {};
let requests: { method: string; url: string; auth: string | undefined; body: unknown }[] = [];
let server: Server;
let url: string;

async function handle(req: IncomingMessage, res: ServerResponse) {
  let text = '';
  for await (const chunk of req) text += chunk;
  requests.push({
    method: req.method!,
    url: req.url!,
    auth: req.headers.authorization,
    body: text ? JSON.parse(text) : undefined,
  });
  const answer = answers[`${req.method} ${req.url!.split('?')[0]}`] ?? {
    status: 404,
    body: { detail: 'No route', error_code: 'NOT_FOUND' },
  };
  res.writeHead(answer.status, { 'content-type': 'application/json' });
  res.end(answer.raw ?? (answer.body === undefined ? '' : JSON.stringify(answer.body)));
}

beforeAll(async () => {
  server = createServer((req, res) => void handle(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

const sales = {
  id: 'ing_1',
  name: 'sales',
  connection_id: 'conn_1',
  source: { format: 'jsonl' },
  destination: 'raw.sales',
  status: 'active',
  created_at: '2025-01-01T00:00:00Z',
  updated_at: '2025-01-01T00:00:00Z',
};

beforeEach(() => {
  requests = [];
  answers = { 'GET /api/v1/ingestions': { status: 200, body: { items: [sales] } } };
});

function fakeIo(
  opts: { interactive?: boolean; answer?: string | null; tty?: boolean; env?: Record<string, string> } = {},
) {
  const out: string[] = [];
  const err: string[] = [];
  const asked: string[] = [];
  const io: Io = {
    out: (t) => out.push(t),
    err: (t) => err.push(t),
    interactive: opts.interactive ?? false,
    progressTty: opts.tty ?? false,
    columns: 100,
    ask: async (q) => {
      asked.push(q);
      return opts.answer ?? null;
    },
    env: opts.env ?? { AUTOLOADER_URL: url, AUTOLOADER_TOKEN: 'al_test' },
  };
  return { io, out: () => out.join(''), err: () => err.join(''), asked };
}

const accepted = {
  status: 'accepted',
  message: 'Full refresh started: run triggered',
  operation_id: 'op_1',
  run_id: 'run_1',
  operations: [
    { operation: 'table_dropped', status: 'success', timestamp: '2025-01-01T00:00:00Z', details: {} },
  ],
};

describe('main', () => {
  it('resolves an ingestion name to its id and sends the token', async () => {
    answers['GET /api/v1/ingestions/ing_1/runs'] = { status: 200, body: { items: [], next_cursor: null } };
    const t = fakeIo();
    expect(await main(['runs', 'sales'], t.io)).toBe(0);
    expect(requests.map((r) => `${r.method} ${r.url.split('?')[0]}`)).toEqual([
      'GET /api/v1/ingestions',
      'GET /api/v1/ingestions/ing_1/runs',
    ]);
    expect(requests.every((r) => r.auth === 'Bearer al_test')).toBe(true);
    expect(t.out()).toBe('No runs yet for sales\n');
  });

  it('--url and --token override the environment', async () => {
    const t = fakeIo({ env: { AUTOLOADER_URL: 'http://127.0.0.1:1', AUTOLOADER_TOKEN: 'al_env' } });
    expect(await main(['ingestions', 'list', '--url', url, '--token', 'al_flag'], t.io)).toBe(0);
    expect(requests[0]!.auth).toBe('Bearer al_flag');
  });

  it('on a terminal asks before a destructive command, and proceeds on "yes"', async () => {
    answers['POST /api/v1/ingestions/ing_1/full-refresh'] = { status: 202, body: accepted };
    const t = fakeIo({ interactive: true, answer: 'yes' });
    expect(await main(['full-refresh', 'sales'], t.io)).toBe(0);
    expect(t.asked[0]).toContain('drops raw.sales');
    expect(requests.at(-1)).toMatchObject({
      method: 'POST',
      url: '/api/v1/ingestions/ing_1/full-refresh',
      body: { confirm: true, dry_run: false, auto_run: true },
    });
    expect(t.out()).toContain('  operation  op_1\n');
  });

  it('sends nothing when the answer is not yes', async () => {
    answers['POST /api/v1/ingestions/ing_1/full-refresh'] = { status: 202, body: accepted };
    const t = fakeIo({ interactive: true, answer: 'n' });
    expect(await main(['full-refresh', 'sales'], t.io)).toBe(1);
    expect(requests.filter((r) => r.method === 'POST')).toEqual([]);
    expect(t.err()).toContain('full-refresh not confirmed; nothing was done');
  });

  it('prints an API error readably with its code and extras; --json also gives the body on stdout', async () => {
    const body = {
      detail: 'Cannot full refresh while an operation runs on this ingestion',
      error_code: 'RUN_IN_PROGRESS',
      current_run_id: 'run_9',
      help: 'Wait for the current run to complete or cancel it first',
    };
    answers['POST /api/v1/ingestions/ing_1/full-refresh'] = { status: 409, body };
    const t = fakeIo();
    expect(await main(['full-refresh', 'sales', '--confirm', '--json'], t.io)).toBe(1);
    expect(t.err()).toBe(
      'error: Cannot full refresh while an operation runs on this ingestion (RUN_IN_PROGRESS, HTTP 409)\n' +
        '  current_run_id: run_9\n' +
        '  help: Wait for the current run to complete or cancel it first\n',
    );
    expect(JSON.parse(t.out())).toEqual(body);
  });

  it('a partial failure answer (500) exits 2 and shows the recovery', async () => {
    answers['POST /api/v1/ingestions/ing_1/fresh-start'] = {
      status: 500,
      body: {
        status: 'partial_failure',
        detail: 'Some operations did not complete',
        error_code: 'PARTIAL_FAILURE',
        operation_id: 'op_2',
        operations: [],
        recovery: {
          message: 'table dropped; run_triggered is being retried',
          action: 'Follow GET /api/v1/operations/op_2',
        },
      },
    };
    const t = fakeIo();
    expect(await main(['fresh-start', 'sales', '--confirm'], t.io)).toBe(2);
    expect(t.out()).toContain('\nRecovery\n  message  table dropped; run_triggered is being retried\n');
  });

  it('says so when something other than the API answers', async () => {
    answers['GET /api/v1/ingestions'] = { status: 502, raw: '<html>Bad Gateway</html>' };
    const t = fakeIo();
    expect(await main(['ingestions', 'list'], t.io)).toBe(1);
    expect(t.err()).toContain('UNEXPECTED_RESPONSE');
    expect(t.err()).toContain('<html>Bad Gateway</html>');
  });

  it('refuses bad arguments before any request', async () => {
    const t = fakeIo();
    expect(await main(['reprocess', 'sales', '--confirm'], t.io)).toBe(1);
    expect(await main(['schedule', 'set', 'sales'], t.io)).toBe(1);
    expect(await main(['no-such-command'], t.io)).toBe(1);
    expect(requests).toEqual([]);
    expect(t.err()).toContain('reprocess needs a selection');
    expect(t.err()).toContain('give exactly one of --cron');
    expect(t.err()).toContain("unknown command 'no-such-command'");
  });
});

/** An ApiClient answering each path from a script, the last answer repeating. */
function scriptedApi(script: Record<string, unknown[]>) {
  const calls: string[] = [];
  const api: ApiClient = {
    baseUrl: 'http://stub',
    async request<T>(method: string, path: string) {
      calls.push(`${method} ${path}`);
      const queue = script[path];
      if (!queue) throw new Error(`unscripted ${path}`);
      return { status: 200, body: (queue.length > 1 ? queue.shift() : queue[0]) as T };
    },
  };
  return { api, calls };
}

const runBody = (status: string, progress: unknown = null) => ({
  id: 'run_1',
  status,
  files_processed: 9,
  files_failed: 1,
  files_skipped: 0,
  records_written: 900,
  bytes_read: 1,
  duration_ms: 10,
  error: null,
  progress,
});

describe('waitForOperation', () => {
  it('follows the run an operation started, draws its progress, then waits for the operation to end', async () => {
    const { api, calls } = scriptedApi({
      '/operations/op_1': [
        { id: 'op_1', status: 'running', run_id: null, finished_at: null },
        { id: 'op_1', status: 'running', run_id: 'run_1', finished_at: null },
        { id: 'op_1', status: 'succeeded', run_id: 'run_1', finished_at: '2025-01-01T00:00:00Z' },
      ],
      '/runs/run_1': [
        runBody('RUNNING', { files_total: 10, files_done: 4, files_failed: 0, records_written: 400 }),
        runBody('PARTIAL_SUCCESS'),
      ],
    });
    const t = fakeIo({ tty: true });
    const sleeps: number[] = [];
    const result = await waitForOperation(api, 'op_1', createProgressReporter(t.io), {
      sleep: async (ms) => {
        sleeps.push(ms);
      },
    });
    expect(result.exitCode).toBe(2);
    expect(result.run?.status).toBe('PARTIAL_SUCCESS');
    expect(result.operation.status).toBe('succeeded');
    expect(calls).toEqual([
      'GET /operations/op_1',
      'GET /operations/op_1',
      'GET /runs/run_1',
      'GET /runs/run_1',
      'GET /operations/op_1',
    ]);
    expect(sleeps.every((ms) => ms === 1000)).toBe(true);
    expect(t.err()).toContain('4/10 files  400 rows');
  });

  it('keeps following a partial_failure that is being retried, and says so once', async () => {
    const { api } = scriptedApi({
      '/operations/op_3': [
        { id: 'op_3', status: 'partial_failure', run_id: null, finished_at: null },
        { id: 'op_3', status: 'partial_failure', run_id: null, finished_at: null },
        {
          id: 'op_3',
          status: 'failed',
          run_id: null,
          finished_at: '2025-01-01T00:00:00Z',
          error: 'bucket gone',
        },
      ],
    });
    const t = fakeIo();
    const result = await waitForOperation(api, 'op_3', createProgressReporter(t.io), {
      sleep: async () => undefined,
    });
    expect(result.exitCode).toBe(1);
    expect(t.err().match(/being retried/g)).toHaveLength(1);
    expect(t.err()).toContain('error: bucket gone');
  });
});
