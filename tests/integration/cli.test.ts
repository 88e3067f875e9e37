import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { type ServerType, serve } from '@hono/node-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ProcessResult, runNode } from '../helpers/child-process.js';
import { type Harness, jsonLines, startHarness } from '../helpers/harness.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

let h: Harness;
let server: ServerType;
let apiUrl: string;

beforeAll(async () => {
  h = await startHarness();
  // The CLI is a separate process: it needs the app on a real socket.
  const port = await new Promise<number>((resolve) => {
    server = serve({ fetch: h.app.fetch, hostname: '127.0.0.1', port: 0 }, (info) => resolve(info.port));
  });
  apiUrl = `http://127.0.0.1:${port}`;
});
afterAll(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  await h?.close();
});

/** Runs `node bin/autoloader.js …` as a user's shell would, stdin closed (as in CI or cron). */
function cli(args: string[], env: Record<string, string> = {}): Promise<ProcessResult> {
  return runNode(['bin/autoloader.js', ...args], {
    cwd: repoRoot,
    env: { ...process.env, AUTOLOADER_URL: apiUrl, AUTOLOADER_TOKEN: h.token, ...env },
  });
}

const rowCount = async (table: string) => {
  const [r] = await h.sql.unsafe(`select count(*)::int as n from raw.${table}`);
  return r!.n as number;
};

interface RunRow {
  id: string;
  status: string;
  trigger: string;
  records_written: number;
}
const runsOf = async (id: string) =>
  (await h.api<{ items: RunRow[] }>('GET', `/api/v1/ingestions/${id}/runs`)).body.items;

describe('autoloader CLI against a real API', () => {
  it('ingestions list --json prints the API JSON, with the ingestion in it', async () => {
    const { id, table } = await h.createIngestion({ 'a.jsonl': jsonLines(0, 10) }, {}, 'cli');
    const res = await cli(['ingestions', 'list', '--json']);
    expect(res.code).toBe(0);
    const body = JSON.parse(res.stdout) as { items: { id: string; name: string; destination: string }[] };
    expect(body).toEqual((await h.api('GET', '/api/v1/ingestions')).body);
    expect(body.items).toContainEqual(
      expect.objectContaining({ id, name: table, destination: `raw.${table}` }),
    );
  });

  it('run <name> --wait follows the run to SUCCESS, exit 0, rows in the table', async () => {
    const { id, table } = await h.createIngestion(
      { 'a.jsonl': jsonLines(0, 120), 'b.jsonl': jsonLines(120, 80) },
      {},
      'cli',
    );
    const res = await cli(['run', table, '--wait']);
    expect(res.code, res.stderr).toBe(0);
    expect(await rowCount(table)).toBe(200);
    const [run] = await runsOf(id);
    expect(run).toMatchObject({ status: 'SUCCESS', records_written: 200 });
    expect(res.stdout).toContain(`SUCCESS  run ${run!.id}`);
    expect(res.stdout).toContain('200 rows');
    // Not a terminal: plain progress lines, no carriage-return redraws.
    expect(res.stderr).not.toContain('\r');
  });

  it('a run with a malformed file exits 2 (PARTIAL_SUCCESS); files --status FAILED shows the error', async () => {
    const { id, table } = await h.createIngestion(
      {
        'good.jsonl': jsonLines(0, 50),
        'bad.jsonl': `${jsonLines(50, 10)}{"id": 60, "user": "broken\n`,
      },
      {},
      'cli',
    );
    const res = await cli(['run', table, '--wait']);
    expect(res.code, res.stderr).toBe(2);
    expect(res.stdout).toContain('PARTIAL_SUCCESS');
    expect(res.stdout).toContain(`autoloader files ${table} --status FAILED`);
    expect(await rowCount(table)).toBe(50);

    const files = await cli(['files', table, '--status', 'FAILED']);
    expect(files.code, files.stderr).toBe(0);
    const failed = await h.api<{ items: { file_path: string; error_message: string; error_type: string }[] }>(
      'GET',
      `/api/v1/ingestions/${id}/processed-files?status=FAILED`,
    );
    expect(failed.body.items).toHaveLength(1);
    const [bad] = failed.body.items;
    expect(bad!.file_path).toMatch(/bad\.jsonl$/);
    expect(files.stdout).toContain(bad!.file_path);
    expect(files.stdout).toContain(`${bad!.error_type}: ${bad!.error_message}`);
    expect(files.stdout).not.toMatch(/good\.jsonl/);
  });

  it('full-refresh --dry-run prints the impact table and changes nothing', async () => {
    const { id, table } = await h.createIngestion(
      { 'a.jsonl': jsonLines(0, 30), 'b.jsonl': jsonLines(30, 30), 'c.jsonl': jsonLines(60, 30) },
      {},
      'cli',
    );
    await h.runAndWait(id);
    const res = await cli(['full-refresh', table, '--dry-run']);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain(`Dry run: full refresh of ${table} (nothing was changed)`);
    for (const step of ['table_dropped', 'processed_files_cleared', 'run_triggered']) {
      expect(res.stdout).toMatch(new RegExp(`^  ${step} `, 'm'));
    }
    expect(res.stdout).toMatch(/^ {2}files to process {4}3$/m);
    expect(res.stdout).toMatch(/^ {2}estimated cost {6}\$\d+\.\d{2}$/m);
    expect(res.stdout).toMatch(/^ {2}estimated duration {2}\d+ min$/m);
    expect(res.stdout).toContain('This operation will reprocess ALL 3 files');
    // The command to proceed carries the dry run's plan: it runs what was previewed, or is refused.
    expect(res.stdout).toMatch(
      new RegExp(`To proceed: autoloader full-refresh ${table} --plan plan_\\w+ --confirm`),
    );
    expect(await rowCount(table)).toBe(90);
    expect(await runsOf(id)).toHaveLength(1);
  });

  it('full-refresh without --confirm and no terminal exits 1 with a clear message, doing nothing', async () => {
    const { id, table } = await h.createIngestion({ 'a.jsonl': jsonLines(0, 25) }, {}, 'cli');
    await h.runAndWait(id);
    const res = await cli(['full-refresh', table]);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('full-refresh is destructive and needs --confirm');
    expect(res.stderr).toContain('stdin is not a terminal');
    expect(await rowCount(table)).toBe(25);
    const [ops] =
      await h.sql`select count(*)::int as n from autoloader.operations where ingestion_id = ${id}`;
    expect(ops!.n).toBe(0);
  });

  it('full-refresh <name> --confirm --wait reloads every file and exits 0', async () => {
    const { id, table } = await h.createIngestion(
      { 'a.jsonl': jsonLines(0, 40), 'b.jsonl': jsonLines(40, 60) },
      {},
      'cli',
    );
    const first = await h.runAndWait(id);
    // A row the refresh must drop with the table: it proves the table was rebuilt from the files.
    await h.sql.unsafe(`delete from raw.${table} where id < 10`);
    expect(await rowCount(table)).toBe(90);

    const res = await cli(['full-refresh', table, '--confirm', '--wait']);
    expect(res.code, res.stderr).toBe(0);
    expect(await rowCount(table)).toBe(100);
    const runs = await runsOf(id);
    expect(runs).toHaveLength(2);
    const refreshRun = runs.find((r) => r.id !== first.id)!;
    expect(refreshRun).toMatchObject({ status: 'SUCCESS', trigger: 'full_refresh', records_written: 100 });
    expect(res.stdout).toContain(`SUCCESS  run ${refreshRun.id}`);
    const [op] = await h.sql<{ id: string; status: string }[]>`
      select id, status from autoloader.operations where ingestion_id = ${id}`;
    expect(op!.status).toBe('success');
    expect(res.stdout).toContain(`operation ${op!.id}: success`);
  });

  it('schedule set --cron, then schedule show, then delete', async () => {
    const { table } = await h.createIngestion({ 'a.jsonl': jsonLines(0, 5) }, {}, 'cli');
    const set = await cli(['schedule', 'set', table, '--cron', '0 2 * * *', '--paused']);
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toMatch(/^ {2}cron +0 2 \* \* \*$/m);

    const show = await cli(['schedule', 'show', table]);
    expect(show.code, show.stderr).toBe(0);
    expect(show.stdout).toMatch(/^ {2}cron +0 2 \* \* \*$/m);
    expect(show.stdout).toMatch(/^ {2}operation +run$/m);
    expect(show.stdout).toMatch(/^ {2}paused +yes$/m);
    // Temporal computed the next firing: 02:00 UTC.
    expect(show.stdout).toMatch(/^ {2}next +\d{4}-\d{2}-\d{2}T02:00:00\.000Z/m);

    const json = await cli(['schedule', 'show', table, '--json']);
    expect(JSON.parse(json.stdout)).toMatchObject({ cron: '0 2 * * *', operation: 'run', paused: true });

    expect((await cli(['schedule', 'delete', table])).code).toBe(0);
    const gone = await cli(['schedule', 'show', table]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toContain('SCHEDULE_NOT_FOUND');
  });

  it('schedule set --refresh sets the refresh schedule beside the run schedule', async () => {
    const { id, table } = await h.createIngestion({ 'a.jsonl': jsonLines(0, 5) }, {}, 'cli');
    expect((await cli(['schedule', 'set', table, '--every', '1h'])).code).toBe(0);
    const set = await cli([
      'schedule',
      'set',
      table,
      '--refresh',
      '--cron',
      '0 3 * * *',
      '--strategy',
      'swap',
    ]);
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toContain(`Schedule ingestion-${id}-refresh of ${table}`);
    expect(set.stdout).toMatch(/^ {2}operation +full_refresh$/m);

    const both = await h.api<{ schedule: { operation: string }; refresh_schedule: { strategy: string } }>(
      'GET',
      `/api/v1/ingestions/${id}`,
    );
    expect(both.body.schedule.operation).toBe('run');
    expect(both.body.refresh_schedule.strategy).toBe('swap');

    const wrong = await cli([
      'schedule',
      'set',
      table,
      '--refresh',
      '--cron',
      '0 3 * * *',
      '--operation',
      'run',
    ]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain('--operation run belongs to the run schedule');

    expect((await cli(['schedule', 'delete', table, '--refresh'])).code).toBe(0);
    expect((await cli(['schedule', 'show', table])).code).toBe(0);
    expect((await cli(['schedule', 'show', table, '--refresh'])).stderr).toContain('SCHEDULE_NOT_FOUND');
  });

  it('refresh-if prints the verdict and the facts, and refreshes only when the condition holds', async () => {
    const { id, table } = await h.createIngestion({ 'a.jsonl': jsonLines(0, 20) }, {}, 'cli');
    await h.runAndWait(id);

    const no = await cli(['refresh-if', table, '--condition', 'new_file_count > 0', '--confirm']);
    expect(no.code, no.stderr).toBe(0);
    expect(no.stdout).toContain('Condition new_file_count > 0: false');
    expect(no.stdout).toMatch(/^ {2}new_file_count +0$/m);
    expect(no.stdout).toContain('Nothing done');
    expect(await runsOf(id)).toHaveLength(1);

    await h.sql.unsafe(`delete from raw.${table} where id < 5`);
    const yes = await cli(['refresh-if', table, '--condition', 'file_count >= 1', '--confirm', '--wait']);
    expect(yes.code, yes.stderr).toBe(0);
    expect(yes.stderr).toContain('Condition file_count >= 1: true');
    expect(yes.stdout).toMatch(/operation op_\w+: success/);
    expect(await rowCount(table)).toBe(20);

    const refused = await cli(['refresh-if', table, '--condition', 'file_count >= 1']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('refresh-if is destructive and needs --confirm');
  });

  it('an unknown ingestion exits 1 with the API error code', async () => {
    const res = await cli(['runs', 'no-such-ingestion']);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('INGESTION_NOT_FOUND');
    expect(res.stdout).toBe('');
  });

  it('a bad token exits 1 with UNAUTHORIZED and the API help', async () => {
    const res = await cli(['ingestions', 'list'], { AUTOLOADER_TOKEN: 'al_not_a_real_token' });
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('UNAUTHORIZED');
    expect(res.stderr).toContain('help:');
  });

  it('a server that is not there exits 1 and says to start it', async () => {
    // A port that was free a moment ago and has nobody listening now.
    const port = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as { port: number };
        probe.close(() => resolve(port));
      });
    });
    const res = await cli(['ingestions', 'list'], { AUTOLOADER_URL: `http://127.0.0.1:${port}` });
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('connection refused');
    expect(res.stderr).toContain('is `npm start` running?');
  });
});
