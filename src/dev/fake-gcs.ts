/**
 * Runs fake-gcs-server (a Google Cloud Storage JSON API emulator) as a child process for tests.
 * It publishes no binaries we can fetch here, so it is built from source with `go install`, the
 * first time it is needed.
 */
import { mkdir } from 'node:fs/promises';
import { ensureGoTool, type GoTool } from './provision.js';
import { type LogSink, resolvePort, startService, toLogger, withPortRetry } from './service.js';

/** Pinned fake-gcs-server version; the install and the launcher both read it here. */
export const FAKE_GCS_MODULE = 'github.com/fsouza/fake-gcs-server@v1.56.1';

export interface FakeGcsOptions {
  /** The filesystem backend's root (buckets are folders). */
  dataDir: string;
  /** Default 4443; 0 = any free port. */
  port?: number;
  log: LogSink;
  startupTimeoutMs?: number;
}

export interface FakeGcsServer {
  /** http://127.0.0.1:<port>, a `gcs` connection's `endpoint`. */
  endpoint: string;
  stop(): Promise<void>;
}

/** fake-gcs-server, built once from its pinned source with `go install`. */
export const FAKE_GCS_TOOL: GoTool = {
  binary: 'fake-gcs-server',
  module: FAKE_GCS_MODULE,
  envVar: 'FAKE_GCS_SERVER_PATH',
  buildNote: 'first run only; a few minutes',
};

/** The binary, built first if missing. */
export const ensureFakeGcs = (sink: LogSink) => ensureGoTool(FAKE_GCS_TOOL, sink);

async function probe(endpoint: string): Promise<true | undefined> {
  const res = await fetch(`${endpoint}/storage/v1/b`, { signal: AbortSignal.timeout(2_000) });
  await res.arrayBuffer();
  return res.ok ? true : undefined;
}

export async function startFakeGcs(opts: FakeGcsOptions): Promise<FakeGcsServer> {
  const log = toLogger(opts.log);
  const binary = await ensureFakeGcs(opts.log);
  await mkdir(opts.dataDir, { recursive: true });
  return withPortRetry(opts.port === 0, log, async () => {
    const port = await resolvePort(opts.port, 4443);
    const endpoint = `http://127.0.0.1:${port}`;
    const args = [
      '-scheme',
      'http',
      '-host',
      '127.0.0.1',
      '-port',
      String(port),
      '-backend',
      'filesystem',
      '-filesystem-root',
      opts.dataDir,
      // Upload and download URLs the server hands out point back at itself, not at Google.
      '-public-host',
      `127.0.0.1:${port}`,
      '-external-url',
      endpoint,
      '-log-level',
      'warn',
    ];
    log.info({ binary, endpoint, dataDir: opts.dataDir }, 'starting fake-gcs-server');
    const svc = await startService(
      { name: 'fake-gcs-server', command: binary, args, log, stopSignal: 'SIGTERM', stopTimeoutMs: 10_000 },
      () => probe(endpoint),
      opts.startupTimeoutMs ?? 60_000,
    );
    log.info({ endpoint, pid: svc.pid }, 'fake-gcs-server ready');
    return { endpoint, stop: () => svc.stop() };
  });
}
