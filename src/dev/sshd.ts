/**
 * Runs Debian's OpenSSH server (`/usr/sbin/sshd`, package openssh-server) as a child process for
 * tests: an SFTP-only server on 127.0.0.1 for one user, made for this run, who logs in with a
 * password or a public key and reads one folder. Host and client keys are made fresh every run.
 *
 * Needs root, as sshd does to serve anyone but the user running it: the password is checked by
 * sshd against /etc/shadow, so the user is a real account, created for the run (useradd, a random
 * password set with chpasswd) and deleted when the server stops. One account per run, not one
 * shared account, so runs on the same machine never change each other's password.
 *
 * No ChrootDirectory: sshd requires every component of a chroot's path to be root-owned and not
 * group- or world-writable, and the suite's folders live in /tmp. The user sees the folder by its
 * real absolute path instead; its account has no shell, and the server allows SFTP only, read-only.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { access, chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { processAlive } from '../lib/process-alive.js';
import {
  type DevLogger,
  type LogSink,
  MissingBinaryError,
  resolvePort,
  runToCompletion,
  startService,
  systemTool,
  toLogger,
  waitFor,
  withPortRetry,
} from './service.js';

const SSHD = '/usr/sbin/sshd';
const USERADD = systemTool('useradd');
const USERDEL = systemTool('userdel');
const CHPASSWD = systemTool('chpasswd');
/** sshd's privilege-separation folder, compiled into Debian's sshd; the package makes it at boot only. */
const PRIVSEP_DIR = '/run/sshd';
/** Test accounts are named `<prefix><pid of the run>-<random>`, so a later run can remove abandoned ones. */
const USER_PREFIX = 'autoloader-sftp-';

export interface SshdOptions {
  /** The folder the user reads, by this same absolute path over SFTP. Created if missing. */
  root: string;
  /** sshd's config, keys, pid file and log; outside `root`, whose files the user may list. */
  dataDir: string;
  /** Default 2222; 0 = any free port. */
  port?: number;
  log: LogSink;
  startupTimeoutMs?: number;
}

/** Plain data, so vitest can `provide` it to test files. */
export interface SftpEndpoint {
  host: string;
  port: number;
  /** The folder served: files put here on disk are read over SFTP at the same absolute path. */
  root: string;
  username: string;
  password: string;
  /** The user's private key (OpenSSH format), whose public half the server accepts. */
  privateKey: string;
  /** The server's host key as known_hosts lists it ("ssh-ed25519 AAAA…"). */
  hostPublicKey: string;
}

export interface SshdServer extends SftpEndpoint {
  stop(): Promise<void>;
}

/** sshd_config takes a path in double quotes; `%` would be read as a token in AuthorizedKeysFile. */
function configPath(p: string): string {
  if (/["%\n]/.test(p)) throw new Error(`sshd: a path with ", % or a newline cannot go in sshd_config: ${p}`);
  return `"${p}"`;
}

/** Runs a command to its end, `input` on its stdin (chpasswd reads the password there, not from argv). */
async function runOrFail(command: string, args: string[], input?: string): Promise<void> {
  const res = await new Promise<{ code: number | null; output: string }>((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c: Buffer) => {
      output += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      output += c.toString();
    });
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, output }));
    child.stdin.end(input);
  });
  if (res.code !== 0) throw new Error(`${command} ${args[0] ?? ''} failed (exit ${res.code}): ${res.output}`);
}

async function keyPair(file: string, comment: string): Promise<{ privateKey: string; publicKey: string }> {
  const res = await runToCompletion('ssh-keygen', [
    '-q',
    '-t',
    'ed25519',
    '-N',
    '',
    '-C',
    comment,
    '-f',
    file,
  ]).catch((err: unknown) => {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      throw new MissingBinaryError(
        'ssh-keygen',
        'ssh-keygen not found: run sudo npm run setup:system (Debian’s openssh-client comes with openssh-server)',
      );
    throw err;
  });
  if (res.code !== 0) throw new Error(`ssh-keygen could not make ${file} (exit ${res.code}): ${res.output}`);
  const [privateKey, publicKey] = await Promise.all([
    readFile(file, 'utf8'),
    readFile(`${file}.pub`, 'utf8'),
  ]);
  return { privateKey, publicKey: publicKey.trim() };
}

/** userdel's exit code for "the user does not exist": a concurrent run removed it first. */
const USERDEL_NO_SUCH_USER = 6;

async function deleteUser(username: string, log: DevLogger): Promise<void> {
  // A session that is still closing keeps a process of the user's, and userdel refuses until it ends.
  await waitFor(
    `user ${username} to be removed`,
    async () => {
      const res = await runToCompletion(USERDEL, [username]);
      if (res.code === 0 || res.code === USERDEL_NO_SUCH_USER) return true;
      throw new Error(res.output.trim());
    },
    { timeoutMs: 5_000 },
  ).catch((err: unknown) =>
    log.warn({ username, err: String(err) }, 'could not remove the SFTP test user; a later run will'),
  );
}

/** Accounts of runs that were killed before they could remove theirs. */
async function removeAbandonedUsers(log: DevLogger): Promise<void> {
  const passwd = await readFile('/etc/passwd', 'utf8');
  const pattern = new RegExp(`^(${USER_PREFIX}(\\d+)-[0-9a-f]+):`, 'gm');
  for (const [, username, pid] of passwd.matchAll(pattern))
    if (!processAlive(Number(pid))) await deleteUser(username!, log);
}

async function createUser(root: string, log: DevLogger): Promise<{ username: string; password: string }> {
  await removeAbandonedUsers(log);
  const username = `${USER_PREFIX}${process.pid}-${randomBytes(3).toString('hex')}`;
  const password = randomBytes(18).toString('base64url');
  await runOrFail(USERADD, [
    '--system',
    '--no-create-home',
    '--home-dir',
    root,
    '--shell',
    '/usr/sbin/nologin',
    '--no-user-group',
    '--gid',
    'nogroup',
    '--comment',
    'autoloader SFTP test user (removed when its test run ends)',
    username,
  ]);
  try {
    await runOrFail(CHPASSWD, [], `${username}:${password}\n`);
  } catch (err) {
    await deleteUser(username, log);
    throw err;
  }
  return { username, password };
}

/** OpenSSH 9.8 penalises sources whose connections fail auth; the suite's wrong-credential tests would trip it. */
async function knowsPerSourcePenalties(): Promise<boolean> {
  const { output } = await runToCompletion(SSHD, ['-V']);
  const [, major, minor] = /OpenSSH_(\d+)\.(\d+)/.exec(output) ?? [];
  return Number(major) > 9 || (Number(major) === 9 && Number(minor) >= 8);
}

function sshdConfig(o: { port: number; dataDir: string; username: string; penalties: boolean }): string {
  return [
    'ListenAddress 127.0.0.1',
    `Port ${o.port}`,
    `HostKey ${configPath(path.join(o.dataDir, 'host_ed25519'))}`,
    `PidFile ${configPath(path.join(o.dataDir, 'sshd.pid'))}`,
    `AuthorizedKeysFile ${configPath(path.join(o.dataDir, 'authorized_keys'))}`,
    `AllowUsers ${o.username}`,
    'PermitRootLogin no',
    // Passwords are checked against /etc/shadow by sshd itself, not through the system's PAM stack.
    'UsePAM no',
    'PasswordAuthentication yes',
    'PermitEmptyPasswords no',
    'PubkeyAuthentication yes',
    'KbdInteractiveAuthentication no',
    'HostbasedAuthentication no',
    // The keys file lives below /tmp, which is world-writable: StrictModes would refuse to read it.
    'StrictModes no',
    'Subsystem sftp internal-sftp',
    // SFTP and nothing else, read-only (the loader only reads).
    'ForceCommand internal-sftp -R',
    'AllowTcpForwarding no',
    'AllowAgentForwarding no',
    'AllowStreamLocalForwarding no',
    'X11Forwarding no',
    'PermitTunnel no',
    'PermitTTY no',
    'PermitUserRC no',
    // Tests open connections in parallel; by default sshd starts dropping unauthenticated ones at 10.
    'MaxStartups 100',
    ...(o.penalties ? ['PerSourcePenalties no'] : []),
    'LogLevel VERBOSE',
    '',
  ].join('\n');
}

/** Ready when a new connection is greeted with an SSH identification string. */
function probe(port: number): Promise<true | undefined> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.setTimeout(2_000, () => socket.destroy(new Error('no SSH banner')));
    socket.once('data', (chunk) => {
      socket.destroy();
      resolve(chunk.toString().startsWith('SSH-2.0-') ? true : undefined);
    });
    socket.once('error', reject);
  });
}

export async function startSshd(opts: SshdOptions): Promise<SshdServer> {
  const log = toLogger(opts.log);
  await access(SSHD).catch(() => {
    throw new MissingBinaryError(
      'sshd',
      'sshd not found: run sudo npm run setup:system (Debian’s openssh-server)',
    );
  });
  if (process.getuid?.() !== 0)
    throw new Error(
      'sshd (the SFTP test part) needs root: it checks the test user’s password against /etc/shadow and runs the session as that user. Run the tests as root, as CI does; sudo npm run setup:system installs sshd (Debian’s openssh-server)',
    );
  const root = path.resolve(opts.root);
  const dataDir = path.resolve(opts.dataDir);
  // The test user reads the folder and, as itself, the authorized keys file.
  await Promise.all([mkdir(root, { recursive: true }), mkdir(dataDir, { recursive: true })]);
  await Promise.all([
    chmod(root, 0o755),
    chmod(dataDir, 0o755),
    mkdir(PRIVSEP_DIR, { mode: 0o755, recursive: true }),
  ]);
  const [hostKey, clientKey, penalties] = await Promise.all([
    keyPair(path.join(dataDir, 'host_ed25519'), 'autoloader-test-host'),
    keyPair(path.join(dataDir, 'client_ed25519'), 'autoloader-test-client'),
    knowsPerSourcePenalties(),
  ]);
  await writeFile(path.join(dataDir, 'authorized_keys'), `${clientKey.publicKey}\n`, { mode: 0o644 });
  const { username, password } = await createUser(root, log);

  try {
    return await withPortRetry(opts.port === 0, log, async () => {
      const port = await resolvePort(opts.port, 2222);
      const config = path.join(dataDir, 'sshd_config');
      await writeFile(config, sshdConfig({ port, dataDir, username, penalties }));
      log.info({ port, root, username }, 'starting sshd');
      const svc = await startService(
        {
          name: 'sshd',
          command: SSHD,
          args: ['-D', '-e', '-f', config],
          log,
          stopSignal: 'SIGTERM',
          stopTimeoutMs: 5_000,
          logFile: path.join(dataDir, 'sshd.log'),
        },
        () => probe(port),
        opts.startupTimeoutMs ?? 15_000,
      );
      log.info({ port, pid: svc.pid }, 'sshd ready');
      return {
        host: '127.0.0.1',
        port,
        root,
        username,
        password,
        privateKey: clientKey.privateKey,
        // Type and key only: the comment is ssh-keygen's, not the server's.
        hostPublicKey: hostKey.publicKey.split(' ').slice(0, 2).join(' '),
        stop: async () => {
          await svc.stop();
          await deleteUser(username, log);
        },
      };
    });
  } catch (err) {
    await deleteUser(username, log);
    throw err;
  }
}
