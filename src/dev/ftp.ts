/**
 * Runs pyftpdlib's FTP server (`python3 -m pyftpdlib`) as a child process for tests: one user with
 * a password, read-only, serving a folder; with a certificate it is an FTPS server that requires
 * TLS on both the control and the data connections.
 */
import { mkdir } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import {
  type LogSink,
  resolvePort,
  runToCompletion,
  startService,
  toLogger,
  withPortRetry,
} from './service.js';

/** Pinned pip packages (pyOpenSSL is what pyftpdlib's FTPS needs); the install and the launcher read them here. */
export const PYFTPDLIB_PIP_SPECS = ['pyftpdlib==2.2.0', 'pyopenssl==26.2.0'];

export interface FtpServerOptions {
  /** The folder served as the user's root. */
  root: string;
  username: string;
  password: string;
  /** Default 2121; 0 = any free port. */
  port?: number;
  /** FTPS: the server's certificate and key (PEM files). */
  tls?: { certFile: string; keyFile: string };
  log: LogSink;
  startupTimeoutMs?: number;
}

export interface FtpServer {
  host: string;
  port: number;
  stop(): Promise<void>;
}

const check = `
import importlib.metadata as m, sys
import pyftpdlib, OpenSSL
sys.exit(0 if m.version("pyftpdlib") == "${PYFTPDLIB_PIP_SPECS[0]!.split('==')[1]}" else 3)
`;

// One install per process: the FTP and the FTPS server ask for it at the same moment.
let installing: Promise<void> | undefined;

/**
 * pyftpdlib and pyOpenSSL, pip-installed (for the user) first if missing. Debian's Python refuses
 * user installs outside a virtualenv (PEP 668); these packages are pure Python plus a wheel, so the
 * install is retried with --break-system-packages, as npm run provision does.
 */
export function ensurePyftpdlib(sink: LogSink): Promise<void> {
  installing ??= installPyftpdlib(sink).catch((err: unknown) => {
    installing = undefined;
    throw err;
  });
  return installing;
}

async function installPyftpdlib(sink: LogSink): Promise<void> {
  const log = toLogger(sink);
  const present = await runToCompletion('python3', ['-c', check]).catch((err: unknown) => {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      throw new Error(
        'python3 not found (pyftpdlib runs the FTP test servers): apt-get install -y python3-pip',
      );
    throw err;
  });
  if (present.code === 0) return;
  log.info(`installing ${PYFTPDLIB_PIP_SPECS.join(' ')} with pip --user (first run only)`);
  const pip = (extra: string[]) =>
    runToCompletion('python3', [
      '-m',
      'pip',
      'install',
      '--disable-pip-version-check',
      '--no-input',
      '--user',
      ...extra,
      ...PYFTPDLIB_PIP_SPECS,
    ]);
  let res = await pip([]);
  if (res.code !== 0 && res.output.includes('externally-managed-environment'))
    res = await pip(['--break-system-packages']);
  if (res.code !== 0 || (await runToCompletion('python3', ['-c', check])).code !== 0)
    throw new Error(
      `pip install ${PYFTPDLIB_PIP_SPECS.join(' ')} failed (exit ${res.code}); run npm run provision\n${res.output.slice(-4_000)}`,
    );
  log.info(`${PYFTPDLIB_PIP_SPECS.join(' ')} installed`);
}

/** A self-signed certificate for 127.0.0.1 (openssl), for an FTPS test server. */
export async function selfSignedCertificate(dir: string): Promise<{ certFile: string; keyFile: string }> {
  await mkdir(dir, { recursive: true });
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  const res = await runToCompletion('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    keyFile,
    '-out',
    certFile,
    '-days',
    '2',
    '-subj',
    '/CN=127.0.0.1',
    '-addext',
    'subjectAltName=IP:127.0.0.1',
  ]).catch((err: unknown) => {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      throw new Error(
        'openssl not found (it makes the FTPS test server’s certificate): apt-get install -y openssl',
      );
    throw err;
  });
  if (res.code !== 0)
    throw new Error(`openssl could not make a test certificate (exit ${res.code}): ${res.output}`);
  return { certFile, keyFile };
}

/** Ready when the server greets (220) a new connection. */
function probe(port: number): Promise<true | undefined> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.setTimeout(2_000, () => socket.destroy(new Error('no greeting')));
    socket.once('data', (chunk) => {
      socket.end('QUIT\r\n');
      resolve(chunk.toString().startsWith('220') ? true : undefined);
    });
    socket.once('error', reject);
  });
}

export async function startFtpServer(opts: FtpServerOptions): Promise<FtpServer> {
  const log = toLogger(opts.log);
  await ensurePyftpdlib(opts.log);
  await mkdir(opts.root, { recursive: true });
  const name = opts.tls ? 'ftps' : 'ftp';
  return withPortRetry(opts.port === 0, log, async () => {
    const port = await resolvePort(opts.port, 2121);
    const args = [
      '-m',
      'pyftpdlib',
      '-i',
      '127.0.0.1',
      '-p',
      String(port),
      '-d',
      opts.root,
      '-u',
      opts.username,
      '-P',
      opts.password,
      ...(opts.tls
        ? [
            '--tls',
            '--certfile',
            opts.tls.certFile,
            '--keyfile',
            opts.tls.keyFile,
            '--tls-control-required',
            '--tls-data-required',
          ]
        : []),
    ];
    log.info({ port, root: opts.root, tls: Boolean(opts.tls) }, `starting pyftpdlib (${name})`);
    const svc = await startService(
      { name, command: 'python3', args, log, stopSignal: 'SIGTERM', stopTimeoutMs: 5_000 },
      () => probe(port),
      opts.startupTimeoutMs ?? 30_000,
    );
    log.info({ port, pid: svc.pid }, `pyftpdlib (${name}) ready`);
    return { host: '127.0.0.1', port, stop: () => svc.stop() };
  });
}
