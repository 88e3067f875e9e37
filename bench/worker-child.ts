/**
 * Starts the production worker (src/bin/worker.ts) as a child, waits until it polls, stops it
 * gracefully. By default it is the built worker, as production runs it (`node` on the compiled
 * JavaScript and the prebuilt workflow bundle: `npm run build` into a cache folder first, untimed);
 * BENCH_WORKER=source runs it from source through tsx instead, whose loader thread and compiled
 * modules add to the memory measured.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { WorkerParentMessage, WorkerProcessMessage } from '../src/bin/worker.js';

export interface WorkerChild {
  pid: number;
  stop(): Promise<void>;
}

const root = fileURLToPath(new URL('../', import.meta.url));
const sourceScript = `${root}src/bin/worker.ts`;
// Inside node_modules/.cache: the compiled code finds the project's node_modules from there, and
// the project's own dist/ (what bin/autoloader.js runs) is left alone.
const builtDir = `${root}node_modules/.cache/autoloader-bench/dist`;

export type WorkerMode = 'built' | 'source';

export function workerMode(): WorkerMode {
  const mode = process.env.BENCH_WORKER ?? 'built';
  if (mode !== 'built' && mode !== 'source')
    throw new Error(`BENCH_WORKER must be built or source, not ${mode}`);
  return mode;
}

/** Compiles the service and bundles its workflows, as `npm run build` does, for the built worker. */
export function buildWorker(): void {
  execFileSync(process.execPath, ['--import', 'tsx', `${root}scripts/build.ts`, '--out-dir', builtDir], {
    cwd: root,
    stdio: ['ignore', 2, 2],
  });
}

/**
 * Node itself runs the worker (the built JavaScript, or the source with tsx as an import hook)
 * rather than a CLI wrapper, which would put a process between us and the worker: the pid we
 * sample must be the worker's.
 */
export async function startWorkerChild(env: NodeJS.ProcessEnv): Promise<WorkerChild> {
  // The built worker loads the bundle built beside it; from source, the one the bench made.
  if (env.BENCH_WORKFLOW_BUNDLE && workerMode() === 'source')
    env = { ...env, AUTOLOADER_WORKFLOW_BUNDLE: env.BENCH_WORKFLOW_BUNDLE };
  // BENCH_WORKER_CPU_PROF=<dir>: the worker writes a V8 CPU profile there when it stops (diagnosis).
  const profileDir = process.env.BENCH_WORKER_CPU_PROF;
  const profiling = profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : [];
  // BENCH_WORKER_NODE_FLAGS="--trace-gc …": Node flags for the worker alone (NODE_OPTIONS refuses
  // some, and would reach the bench too).
  const flags = (process.env.BENCH_WORKER_NODE_FLAGS ?? '').split(' ').filter(Boolean);
  const entry =
    workerMode() === 'built'
      ? [`${builtDir}/bin/worker.js`]
      : ['--import', import.meta.resolve('tsx'), sourceScript];
  const child: ChildProcess = spawn(process.execPath, [...profiling, ...flags, ...entry], {
    env,
    // The worker logs (pino, stdout) go to our stderr: the bench's stdout is its report.
    stdio: ['ignore', 2, 2, 'ipc'],
  });
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  const ready = new Promise<void>((resolve, reject) => {
    child.on('message', (m: WorkerProcessMessage) => {
      if (m.type === 'ready') resolve();
    });
    void exited.then(([code, signal]) =>
      reject(new Error(`bench worker exited before it was ready (code ${code}, signal ${signal})`)),
    );
  });
  await ready;
  const pid = child.pid;
  if (pid === undefined) throw new Error('bench worker has no pid');

  return {
    pid,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.send({ type: 'stop' } satisfies WorkerParentMessage);
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      try {
        const [code, signal] = await exited;
        if (code !== 0) process.stderr.write(`bench worker stopped with code ${code}, signal ${signal}\n`);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
