/**
 * Shared plumbing for the local development/test service launchers
 * (Temporal dev server, embedded Postgres, MinIO): free ports, binary lookup,
 * spawning a child with a bounded output buffer, readiness polling and
 * graceful shutdown. Each launcher is a thin layer over these helpers.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import {
  createWriteStream,
  existsSync,
  constants as fsConstants,
  mkdirSync,
  type WriteStream,
} from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { createServer } from 'node:net';
import { homedir, platform } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** Structural subset of a pino Logger, so a pino instance can be passed directly. */
export interface DevLogger {
  info(obj: object | string, msg?: string): void;
  warn(obj: object | string, msg?: string): void;
  error(obj: object | string, msg?: string): void;
}

/** Launchers accept either a logger or a bare line sink such as `(m) => process.stderr.write(m)`. */
export type LogSink = DevLogger | ((msg: string) => void);

export function toLogger(sink: LogSink): DevLogger {
  if (typeof sink !== 'function') return sink;
  const line = (level: string) => (obj: object | string, msg?: string) => {
    const text = typeof obj === 'string' ? obj : `${msg ?? ''} ${JSON.stringify(obj)}`.trim();
    sink(level === 'info' ? text : `[${level}] ${text}`);
  };
  return { info: line('info'), warn: line('warn'), error: line('error') };
}

/** Raised when a service's executable cannot be located; callers may treat it as "service unavailable". */
export class MissingBinaryError extends Error {
  constructor(
    readonly binary: string,
    message: string,
  ) {
    super(message);
    this.name = 'MissingBinaryError';
  }
}

/** Raised when a spawned service exits (or fails to spawn) before it became ready. */
export class ServiceExitedError extends Error {
  constructor(
    readonly service: string,
    message: string,
  ) {
    super(message);
    this.name = 'ServiceExitedError';
  }
}

/**
 * Ask the kernel for an unused TCP port. There is an unavoidable window between
 * closing this probe socket and the service binding the port; `withPortRetry`
 * covers the rare clash.
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error('could not determine a free port'));
        return;
      }
      server.close(() => resolve(address.port));
    });
  });
}

/** `requested === 0` means "any free port"; undefined means the service's conventional default. */
export async function resolvePort(requested: number | undefined, fallback: number): Promise<number> {
  const port = requested ?? fallback;
  return port === 0 ? freePort() : port;
}

/**
 * Run `attempt` again (up to 3 times) when it failed because the child died
 * during startup and its ports were picked automatically: the likeliest cause
 * is another process grabbing the port between `freePort` and the bind.
 */
export async function withPortRetry<T>(
  autoPorts: boolean,
  log: DevLogger,
  attempt: () => Promise<T>,
): Promise<T> {
  const maxAttempts = autoPorts ? 3 : 1;
  for (let i = 1; ; i++) {
    try {
      return await attempt();
    } catch (err) {
      if (i >= maxAttempts || !(err instanceof ServiceExitedError)) throw err;
      log.warn(
        { attempt: i, service: err.service },
        'service exited during startup; retrying on fresh ports',
      );
    }
  }
}

async function isExecutableFile(path: string): Promise<boolean> {
  try {
    await access(path, fsConstants.X_OK);
    return (await stat(path)).isFile();
  } catch {
    // Missing or not executable: the caller just moves on to the next candidate.
    return false;
  }
}

/**
 * Locate an executable: an explicit path in `envVar` wins (and must be valid,
 * since a wrong explicit setting should fail loudly), then PATH, then each of
 * `extraDirs` (resolved lazily so slow probes like `python3 -m site` only run
 * when PATH misses).
 */
export async function findExecutable(
  name: string,
  opts: { envVar?: string; extraDirs?: () => Promise<string[]> } = {},
): Promise<string | undefined> {
  const explicit = opts.envVar ? process.env[opts.envVar] : undefined;
  if (explicit) {
    if (await isExecutableFile(explicit)) return explicit;
    throw new MissingBinaryError(name, `${opts.envVar}=${explicit} is not an executable file`);
  }
  const pathDirs = (process.env.PATH ?? '').split(delimiter).filter(Boolean);
  for (const dir of pathDirs) {
    const candidate = join(dir, name);
    if (await isExecutableFile(candidate)) return candidate;
  }
  for (const dir of (await opts.extraDirs?.()) ?? []) {
    const candidate = join(dir, name);
    if (await isExecutableFile(candidate)) return candidate;
  }
  return undefined;
}

/** Run a short command and return its trimmed stdout, or undefined if it is unavailable or fails. */
export async function commandOutput(command: string, args: string[]): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile(command, args, { timeout: 10_000, encoding: 'utf8' }, (err, stdout) => {
      // A missing helper (python3, go) only means fewer places to look for a binary.
      resolve(err ? undefined : stdout.trim() || undefined);
    });
  });
}

/**
 * A system administration tool (useradd, userdel, chpasswd) by absolute path where it has one:
 * they live in /usr/sbin or /sbin, which a non-login PATH (CI's, cron's, /usr/bin:/bin) leaves out.
 */
export function systemTool(name: string): string {
  for (const dir of ['/usr/sbin', '/sbin']) {
    const candidate = `${dir}/${name}`;
    if (existsSync(candidate)) return candidate;
  }
  return name;
}

export function homeDir(...parts: string[]): string {
  return join(homedir(), ...parts);
}

/** Keeps only the last `limit` characters of a stream so a chatty child cannot grow memory unbounded. */
class OutputTail {
  private text = '';
  constructor(private readonly limit = 64 * 1024) {}
  push(chunk: Buffer | string): void {
    this.text += chunk.toString();
    if (this.text.length > this.limit) this.text = this.text.slice(-this.limit);
  }
  toString(): string {
    return this.text;
  }
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  output: string;
}

/** Run a one-shot command (e.g. initdb) to completion, capturing combined output. */
export async function runToCompletion(
  command: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; uid?: number; gid?: number; cwd?: string } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      uid: opts.uid,
      gid: opts.gid,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const tail = new OutputTail();
    child.stdout.on('data', (c: Buffer) => tail.push(c));
    child.stderr.on('data', (c: Buffer) => tail.push(c));
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal, output: tail.toString() }));
  });
}

// Children that are still running. If the Node process exits without calling
// stop() (uncaught error, process.exit in a signal handler) we still ask them
// to shut down, because they run in their own process group (see spawnService)
// and would otherwise outlive us.
const liveServices = new Set<{ child: ChildProcess; stopSignal: NodeJS.Signals }>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    // kill() reports a vanished child by returning false rather than throwing.
    for (const { child, stopSignal } of liveServices) child.kill(stopSignal);
  });
}

const SETPRIV = '/usr/bin/setpriv';
const hasSetpriv = platform() === 'linux' && existsSync(SETPRIV);

/**
 * On Linux, start the service through util-linux `setpriv --pdeathsig`, which
 * sets PR_SET_PDEATHSIG and then execs the service (same pid). The kernel then
 * sends `signal` to the service if this Node process dies without running its
 * 'exit' handlers — killed by SIGKILL, or by a SIGINT/SIGTERM that nothing
 * handles (`vitest run` on Ctrl-C) — so services are not orphaned. The setting
 * survives the uid switch because setpriv runs after it. Without setpriv we
 * fall back to the 'exit' hook alone.
 */
function withParentDeathSignal(command: string, args: string[], signal: NodeJS.Signals): [string, string[]] {
  if (!hasSetpriv) return [command, args];
  return [SETPRIV, ['--pdeathsig', signal.replace(/^SIG/, ''), '--', command, ...args]];
}

export interface SpawnServiceOptions {
  /** Short name used in logs and errors, e.g. "temporal". */
  name: string;
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  uid?: number;
  gid?: number;
  log: DevLogger;
  /** Signal that asks the service for a graceful shutdown (postgres wants SIGINT = "fast" shutdown). */
  stopSignal?: NodeJS.Signals;
  /** How long stop() waits after stopSignal before SIGKILL. */
  stopTimeoutMs?: number;
  /** Also append the service's output to this file (created with its folder). */
  logFile?: string;
}

export interface ServiceProcess {
  readonly name: string;
  readonly pid: number;
  /** Aborted as soon as the child exits, so readiness polls stop early. */
  readonly exitSignal: AbortSignal;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Last ~64 KiB of combined stdout/stderr, for diagnostics. */
  output(): string;
  /** Graceful stop with SIGKILL fallback; idempotent and safe after the child died. */
  stop(): Promise<void>;
}

/**
 * Spawn a long-running service. Output is buffered (not streamed to the log)
 * because these services are chatty; the buffer is dumped to the log when the
 * service fails to start or exits unexpectedly.
 */
export function spawnService(opts: SpawnServiceOptions): ServiceProcess {
  const stopSignal = opts.stopSignal ?? 'SIGTERM';
  const stopTimeoutMs = opts.stopTimeoutMs ?? 15_000;
  const tail = new OutputTail();
  const exitController = new AbortController();

  const [command, args] = withParentDeathSignal(opts.command, opts.args, stopSignal);
  const child = spawn(command, args, {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    uid: opts.uid,
    gid: opts.gid,
    stdio: ['ignore', 'pipe', 'pipe'],
    // Own process group: a terminal Ctrl-C reaches only the Node process, which
    // then stops services in order (workers drain before the database goes away).
    // If Node dies instead, the parent-death signal above still stops them.
    detached: true,
  });
  const entry = { child, stopSignal };
  liveServices.add(entry);
  installExitHook();

  let stopping = false;
  let file: WriteStream | undefined;
  if (opts.logFile) {
    mkdirSync(dirname(opts.logFile), { recursive: true });
    file = createWriteStream(opts.logFile, { flags: 'a' });
    // A full disk must not take the service down with it: the tail still holds the output.
    file.on('error', (err) => opts.log.warn({ service: opts.name, err }, 'cannot write the log file'));
  }
  const record = (c: Buffer) => {
    tail.push(c);
    file?.write(c);
  };
  child.stdout?.on('data', record);
  child.stderr?.on('data', record);

  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('error', (err) => {
      // Spawn failure (ENOENT/EACCES): no 'exit' event will follow.
      tail.push(`\nspawn error: ${err.message}\n`);
      liveServices.delete(entry);
      exitController.abort();
      resolve({ code: null, signal: null });
    });
    child.once('exit', (code, signal) => {
      liveServices.delete(entry);
      file?.end();
      exitController.abort();
      if (!stopping) {
        opts.log.error(
          { service: opts.name, code, signal, output: tail.toString().slice(-8_000) },
          `${opts.name} exited unexpectedly`,
        );
      }
      resolve({ code, signal });
    });
  });

  let stopPromise: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopPromise ??= (async () => {
      stopping = true;
      if (exitController.signal.aborted) return;
      child.kill(stopSignal);
      const killTimer = setTimeout(() => {
        opts.log.warn(
          { service: opts.name, stopTimeoutMs },
          `${opts.name} ignored ${stopSignal}; sending SIGKILL`,
        );
        child.kill('SIGKILL');
      }, stopTimeoutMs);
      try {
        await exited;
      } finally {
        clearTimeout(killTimer);
      }
    })();
    return stopPromise;
  };

  return {
    name: opts.name,
    pid: child.pid ?? -1,
    exitSignal: exitController.signal,
    exited,
    output: () => tail.toString(),
    stop,
  };
}

/**
 * Poll `probe` until it resolves to a value other than undefined. Probe errors
 * count as "not yet" (the last one is reported on timeout). Stops early when
 * `signal` aborts, which launchers wire to the child's exit.
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  opts: { timeoutMs: number; intervalMs?: number; signal?: AbortSignal },
): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs;
  const intervalMs = opts.intervalMs ?? 200;
  let lastError: unknown;
  while (true) {
    if (opts.signal?.aborted) throw new Error(`gave up waiting for ${what}: aborted`);
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const reason = lastError instanceof Error ? `: ${lastError.message}` : '';
      throw new Error(`timed out after ${opts.timeoutMs} ms waiting for ${what}${reason}`);
    }
    try {
      await sleep(intervalMs, undefined, { signal: opts.signal });
    } catch (err) {
      // Sleep aborted because the signal fired; the check at the top of the loop reports it.
      lastError ??= err;
    }
  }
}

/**
 * Spawn a service and wait until `ready` succeeds. On failure the child is
 * stopped, its output is logged, and the error says whether the child died
 * (ServiceExitedError, retryable on fresh ports) or just never became ready.
 */
export async function startService(
  opts: SpawnServiceOptions,
  ready: (svc: ServiceProcess) => Promise<unknown>,
  readyTimeoutMs: number,
): Promise<ServiceProcess> {
  const svc = spawnService(opts);
  try {
    await waitFor(
      `${opts.name} to become ready`,
      async () => ((await ready(svc)) === undefined ? undefined : true),
      {
        timeoutMs: readyTimeoutMs,
        intervalMs: 250,
        signal: svc.exitSignal,
      },
    );
    return svc;
  } catch (err) {
    const died = svc.exitSignal.aborted;
    await svc.stop();
    const output = svc.output().slice(-8_000);
    // An early exit was already logged with its output by spawnService.
    if (!died) opts.log.error({ service: opts.name, output }, `${opts.name} did not become ready`);
    const detail = `${opts.name} failed to start (${opts.command} ${opts.args.join(' ')}): ${
      died ? 'process exited during startup' : err instanceof Error ? err.message : String(err)
    }\n--- last output ---\n${output}`;
    throw died ? new ServiceExitedError(opts.name, detail) : new Error(detail, { cause: err });
  }
}

/** A logger for Temporal's workflow bundler that keeps webpack's chatter out and its problems in. */
export function quietBundlerLogger(log: DevLogger) {
  return {
    log: () => undefined,
    trace: () => undefined,
    debug: () => undefined,
    info: () => undefined,
    warn: (message: string) => log.warn(message),
    error: (message: string) => log.error(message),
  };
}
