/** Starts the production worker (src/bin/worker.ts) as a child, waits until it polls, stops it gracefully. */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { WorkerParentMessage, WorkerProcessMessage } from '../src/bin/worker.js';

export interface WorkerChild {
  pid: number;
  stop(): Promise<void>;
}

const script = fileURLToPath(new URL('../src/bin/worker.ts', import.meta.url));

/**
 * Node itself runs the worker (with tsx as an import hook) rather than the `tsx` CLI, which would
 * put a wrapper process between us and the worker: the pid we sample must be the worker's.
 */
export async function startWorkerChild(env: NodeJS.ProcessEnv): Promise<WorkerChild> {
  if (env.BENCH_WORKFLOW_BUNDLE) env = { ...env, AUTOLOADER_WORKFLOW_BUNDLE: env.BENCH_WORKFLOW_BUNDLE };
  // BENCH_WORKER_CPU_PROF=<dir>: the worker writes a V8 CPU profile there when it stops (diagnosis).
  const profileDir = process.env.BENCH_WORKER_CPU_PROF;
  const profiling = profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : [];
  // BENCH_WORKER_NODE_FLAGS="--trace-gc …": Node flags for the worker alone (NODE_OPTIONS refuses
  // some, and would reach the bench too).
  const flags = (process.env.BENCH_WORKER_NODE_FLAGS ?? '').split(' ').filter(Boolean);
  const child: ChildProcess = spawn(
    process.execPath,
    [...profiling, ...flags, '--import', import.meta.resolve('tsx'), script],
    {
      env,
      // The worker logs (pino, stdout) go to our stderr: the bench's stdout is its report.
      stdio: ['ignore', 2, 2, 'ipc'],
    },
  );
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
