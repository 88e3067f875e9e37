import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { inProcessClient } from '../../src/api/in-process.js';
import { workflowIds } from '../../src/temporal/ids.js';
import { type Harness, jsonLines, type RunBody, startHarness } from '../helpers/harness.js';
import { spawnWorkerProcess, type WorkerProcess } from '../helpers/spawn-worker.js';

/**
 * The production build (`npm run build`): the compiled worker and API run on plain `node` — no
 * tsx, no npm in the process tree — with the migrations, assets and workflow bundle they need
 * beside them in dist/.
 */
const root = fileURLToPath(new URL('../../', import.meta.url));
/**
 * Built into a folder of its own (with the project's node_modules linked in), not dist/: the CLI
 * (bin/autoloader.js) runs dist/ when there is one, and the other tests run it from source.
 */
const buildRoot = mkdtempSync(`${tmpdir()}/autoloader-build-`);
const dist = `${buildRoot}/dist`;
let h: Harness;
let worker: WorkerProcess | undefined;
let api: ChildProcess | undefined;
const taskQueue = `built-${randomUUID()}`;

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });

beforeAll(async () => {
  h = await startHarness();
  symlinkSync(`${root}node_modules`, `${buildRoot}/node_modules`);
  execFileSync(process.execPath, ['--import', 'tsx', 'scripts/build.ts', '--out-dir', dist], {
    cwd: root,
    stdio: 'pipe',
  });
}, 180_000);
afterAll(async () => {
  api?.kill('SIGTERM');
  await worker?.stop();
  await h?.close();
  rmSync(buildRoot, { recursive: true, force: true });
});

describe('the production build', () => {
  it('runs the worker from dist/ with its own workflow bundle, and loads a run', async () => {
    worker = await spawnWorkerProcess({
      databaseUrl: inject('databaseUrl'),
      temporalAddress: inject('temporalAddress'),
      taskQueue,
      entry: `${dist}/bin/worker.js`,
      env: {
        TEST_S3_ACCESS_KEY: process.env.TEST_S3_ACCESS_KEY!,
        TEST_S3_SECRET_KEY: process.env.TEST_S3_SECRET_KEY!,
      },
    });
    const { id, table } = await h.createIngestion(
      { 'a.jsonl': jsonLines(0, 50), 'b.jsonl': jsonLines(50, 50) },
      {},
      'built',
    );
    const client = inProcessClient(h.makeApp({ taskQueue }), h.token);
    const started = await client<{ id: string }>('POST', `/api/v1/ingestions/${id}/run`);
    expect(started.status).toBe(202);
    await Promise.race([h.client.workflow.getHandle(workflowIds.ingestion(id)).result(), worker.died]);
    const run = await client<RunBody>('GET', `/api/v1/runs/${started.body.id}`);
    expect(run.body).toMatchObject({ status: 'SUCCESS', files_processed: 2, records_written: 100 });
    const [rows] = await h.sql.unsafe(`select count(*)::int as n from raw.${table}`);
    expect(rows).toEqual({ n: 100 });
  });

  it('serves the API from dist/: migrations applied, health, docs and the auth check', async () => {
    const port = await freePort();
    let output = '';
    api = spawn(process.execPath, [`${dist}/bin/api.js`], {
      cwd: root,
      env: {
        ...process.env,
        NODE_ENV: 'production',
        DATABASE_URL: inject('databaseUrl'),
        TEMPORAL_ADDRESS: inject('temporalAddress'),
        TEMPORAL_TASK_QUEUE: taskQueue,
        API_PORT: String(port),
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    api.stdout?.on('data', (d: Buffer) => {
      output += d.toString();
    });
    api.stderr?.on('data', (d: Buffer) => {
      output += d.toString();
    });
    const base = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 60_000;
    for (;;) {
      const up = await fetch(`${base}/health`).then(
        (r) => r.ok,
        () => false,
      );
      if (up) break;
      if (api.exitCode !== null || Date.now() > deadline) throw new Error(`api did not start:\n${output}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const docs = await fetch(`${base}/docs`);
    expect(docs.status).toBe(200);
    expect(await docs.text()).toContain('swagger');
    const spec = await fetch(`${base}/openapi.json`);
    expect(spec.status).toBe(200);
    const anonymous = await fetch(`${base}/api/v1/ingestions`);
    expect(anonymous.status).toBe(401);
  });
});
