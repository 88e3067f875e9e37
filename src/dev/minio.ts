/**
 * Runs a single-drive MinIO server as a child process, giving local
 * development and tests a real S3 API (path-style addressing).
 */
import { mkdir } from 'node:fs/promises';
import { ensureGoTool, type GoTool } from './provision.js';
import { type LogSink, resolvePort, startService, toLogger, withPortRetry } from './service.js';

/** Pinned MinIO source version; MinIO no longer publishes binaries we can fetch here, so we build it with Go. */
export const MINIO_MODULE = 'github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c';

/** Everything an S3 client needs; plain data so vitest can `provide` it to test workers. */
export interface S3Endpoint {
  endpoint: string;
  accessKey: string;
  secretKey: string;
  region: string;
}

export interface MinioOptions {
  /** The single drive. Buckets and objects persist here across restarts. */
  dataDir: string;
  /** S3 API port; default 9000, 0 = any free port. */
  port?: number;
  /** Console port; default port+1 (or a free port when port is 0), 0 = any free port. */
  consolePort?: number;
  accessKey?: string;
  /** MinIO requires at least 8 characters. */
  secretKey?: string;
  log: LogSink;
  startupTimeoutMs?: number;
}

export interface MinioServer extends S3Endpoint {
  consoleUrl: string;
  stop(): Promise<void>;
}

/** MinIO, built once from its pinned source with `go install`. */
export const MINIO_TOOL: GoTool = {
  binary: 'minio',
  module: MINIO_MODULE,
  envVar: 'MINIO_PATH',
  buildNote: 'several minutes the first time',
};

/** The binary, built first if missing. */
export const ensureMinio = (sink: LogSink) => ensureGoTool(MINIO_TOOL, sink);

/**
 * "live" only says the HTTP server is up; "ready" says the drive is
 * initialised and S3 calls will be served, so require both.
 */
async function probe(endpoint: string): Promise<true | undefined> {
  for (const path of ['/minio/health/live', '/minio/health/ready']) {
    const res = await fetch(`${endpoint}${path}`, { signal: AbortSignal.timeout(2_000) });
    await res.arrayBuffer();
    if (!res.ok) return undefined;
  }
  return true;
}

export async function startMinio(opts: MinioOptions): Promise<MinioServer> {
  const log = toLogger(opts.log);
  const binary = await ensureMinio(opts.log);
  await mkdir(opts.dataDir, { recursive: true });
  const accessKey = opts.accessKey ?? 'autoloader';
  const secretKey = opts.secretKey ?? 'autoloader-secret';
  const region = 'us-east-1';
  const autoPorts = opts.port === 0 || opts.consolePort === 0;

  return withPortRetry(autoPorts, log, async () => {
    const port = await resolvePort(opts.port, 9000);
    const consolePort = await resolvePort(opts.consolePort ?? (opts.port === 0 ? 0 : undefined), port + 1);
    const endpoint = `http://127.0.0.1:${port}`;
    const args = [
      'server',
      opts.dataDir,
      '--address',
      `127.0.0.1:${port}`,
      '--console-address',
      `127.0.0.1:${consolePort}`,
      '--quiet',
    ];
    log.info({ binary, endpoint, consolePort, dataDir: opts.dataDir }, 'starting MinIO');
    const svc = await startService(
      {
        name: 'minio',
        command: binary,
        args,
        env: {
          ...process.env,
          MINIO_ROOT_USER: accessKey,
          MINIO_ROOT_PASSWORD: secretKey,
          MINIO_SITE_REGION: region,
          // No network here and no point phoning home from a dev/test server.
          MINIO_UPDATE: 'off',
        },
        log,
        stopSignal: 'SIGTERM',
        stopTimeoutMs: 10_000,
      },
      () => probe(endpoint),
      opts.startupTimeoutMs ?? 60_000,
    );
    const consoleUrl = `http://127.0.0.1:${consolePort}`;
    log.info({ endpoint, consoleUrl, pid: svc.pid }, 'MinIO ready');
    return { endpoint, accessKey, secretKey, region, consoleUrl, stop: () => svc.stop() };
  });
}
