/**
 * Starts the production worker (src/bin/worker.ts, as `npm run worker` does) in a child Node process
 * (TypeScript through tsx's loader) and gives the test a handle to kill it for real or stop it
 * gracefully.
 *
 * Env for post-mortems: TEST_WORKER_OUTPUT=1 streams the workers' output to stderr (otherwise it is
 * only shown when a worker dies unexpectedly); TEST_WORKER_LOG_LEVEL sets their LOG_LEVEL (warn).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { WorkerProcessMessage } from '../../src/bin/worker.js';

const entry = fileURLToPath(new URL('../../src/bin/worker.ts', import.meta.url));
/** `--import tsx` is resolved from the working directory, so run from the project root. */
const projectRoot = fileURLToPath(new URL('../../', import.meta.url));

export interface WorkerProcessOptions {
  databaseUrl: string;
  temporalAddress: string;
  taskQueue: string;
  /** Pre-built workflow bundle (inject('workflowBundlePath')). */
  workflowBundlePath?: string;
  /** Extra environment, e.g. the S3 credential variables the connections name. */
  env?: Record<string, string>;
  readyTimeoutMs?: number;
  /** Another entry point: the compiled worker (`dist/bin/worker.js`) runs on plain node, no tsx. */
  entry?: string;
}

export interface WorkerProcess {
  readonly pid: number;
  /** Last ~64 KiB of the child's stdout and stderr, for failure messages. */
  output(): string;
  /**
   * Rejects as soon as the child exits without having been asked to (kill/stop), so a test
   * waiting on a workflow fails at once with the worker's output instead of at its timeout.
   * Never settles otherwise.
   */
  readonly died: Promise<never>;
  /** SIGKILL: no drain, no heartbeat, no goodbye. Resolves once the process is gone. */
  kill(): Promise<void>;
  /** SIGTERM (the worker drains), SIGKILL after `graceMs`. Idempotent; safe after the child died. */
  stop(graceMs?: number): Promise<void>;
}

type Exit = { code: number | null; signal: NodeJS.Signals | null };

export async function spawnWorkerProcess(opts: WorkerProcessOptions): Promise<WorkerProcess> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...opts.env,
    DATABASE_URL: opts.databaseUrl,
    TEMPORAL_ADDRESS: opts.temporalAddress,
    TEMPORAL_TASK_QUEUE: opts.taskQueue,
    LOG_LEVEL: process.env.TEST_WORKER_LOG_LEVEL ?? 'warn',
    ...(opts.workflowBundlePath ? { AUTOLOADER_WORKFLOW_BUNDLE: opts.workflowBundlePath } : {}),
  };
  const args = opts.entry ? [opts.entry] : ['--import', 'tsx', entry];
  const child: ChildProcess = spawn(process.execPath, args, {
    cwd: projectRoot,
    env,
    // An IPC channel for `ready`, and so that the child notices when this process is gone.
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });

  let tail = '';
  const keep = (chunk: Buffer) => {
    tail = (tail + chunk.toString()).slice(-64 * 1024);
    if (process.env.TEST_WORKER_OUTPUT) process.stderr.write(`[worker ${child.pid}] ${chunk.toString()}`);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);

  let intended = false;
  let exit: Exit | undefined;
  const exited = new Promise<Exit>((resolve) => {
    child.once('error', (err) => {
      tail += `\nspawn error: ${err.message}\n`;
      exit = { code: null, signal: null };
      resolve(exit);
    });
    child.once('exit', (code, signal) => {
      exit = { code, signal };
      resolve(exit);
    });
  });
  const died = exited.then((e): Promise<never> => {
    if (intended) return new Promise<never>(() => undefined);
    throw new Error(
      `worker process ${child.pid} exited unexpectedly (code ${e.code}, signal ${e.signal})\n--- output ---\n${tail.slice(-8_000)}`,
    );
  });
  // Observed by whoever races it; without a handler an unwatched rejection would fail the run.
  died.catch(() => undefined);

  const ready = new Promise<void>((resolve, reject) => {
    child.on('message', (m: WorkerProcessMessage) => {
      if (m.type === 'ready') resolve();
    });
    void exited.then((e) => reject(new Error(`exited during startup (code ${e.code}, signal ${e.signal})`)));
  });

  const kill = async () => {
    intended = true;
    if (!exit) child.kill('SIGKILL');
    await exited;
  };

  let stopping: Promise<void> | undefined;
  const stop = (graceMs = 15_000) => {
    stopping ??= (async () => {
      intended = true;
      if (exit) return;
      child.kill('SIGTERM');
      // A worker stuck in a long activity would otherwise hold the test's teardown hostage.
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      try {
        await exited;
      } finally {
        clearTimeout(timer);
      }
    })();
    return stopping;
  };

  const readyTimeoutMs = opts.readyTimeoutMs ?? 60_000;
  let deadline: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      ready,
      new Promise<never>((_, reject) => {
        deadline = setTimeout(
          () => reject(new Error(`not ready after ${readyTimeoutMs} ms`)),
          readyTimeoutMs,
        );
      }),
    ]);
  } catch (err) {
    await stop(2_000);
    throw new Error(
      `worker process did not start: ${err instanceof Error ? err.message : String(err)}\n--- output ---\n${tail.slice(-8_000)}`,
    );
  } finally {
    clearTimeout(deadline);
  }

  return { pid: child.pid ?? -1, output: () => tail, died, kill, stop };
}
