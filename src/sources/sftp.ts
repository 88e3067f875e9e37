import { createHash } from 'node:crypto';
import type net from 'node:net';
import type { Readable } from 'node:stream';
import type { ServerHostKeyAlgorithm, SFTPWrapper, Stats } from 'ssh2';
import SftpClient from 'ssh2-sftp-client';
import { z } from 'zod';
import { type AddressPolicy, guardedConnect } from '../net/address-policy.js';
import { type SecretRef, secretRefSchema } from '../secrets/refs.js';
import { defineObjectStoreKind, runChecks, type SourceContext } from './kind.js';
import {
  bareHost,
  ConnectionPool,
  checkHostAtApi,
  describeAllowedHost,
  hostSchema,
  isAddressRefusal,
  normaliseRoot,
  type RemoteEntry,
  remotePath,
  remoteRootSchema,
  sizeMtimeEtag,
  walkRemoteOn,
} from './remote.js';
import { type ObjectStore, SourceConfigError, SourceFileError, SourceFileMissingError } from './types.js';

/** SFTP status codes (draft-ietf-secsh-filexfer): the ones that say something about a path. */
const NO_SUCH_FILE = 2;
const PERMISSION_DENIED = 3;

/** The known host key: a public key as known_hosts or `*.pub` write it, or its SHA256 fingerprint. */
const hostKeyPattern =
  /^(SHA256:[A-Za-z0-9+/]{43}=?|([^\s]+\s+)?(ssh|ecdsa|sk)-[A-Za-z0-9@.-]+\s+[A-Za-z0-9+/]+={0,3}(\s.*)?)$/;

export const sftpConnectionConfigSchema = z
  .object({
    host: hostSchema,
    port: z.number().int().min(1).max(65535).default(22),
    username: z.string().min(1).max(256),
    password: secretRefSchema.optional(),
    private_key: secretRefSchema.optional().describe('A private key (OpenSSH or PEM format)'),
    passphrase: secretRefSchema.optional().describe('The private key’s passphrase, if it has one'),
    known_host_key: z
      .string()
      .trim()
      .regex(
        hostKeyPattern,
        'a public key ("ssh-ed25519 AAAA…", as in known_hosts) or "SHA256:<fingerprint>"',
      )
      .optional()
      .describe(
        'The server’s host key, as in known_hosts ("ssh-ed25519 AAAA…") or its fingerprint ("SHA256:…", as ssh-keygen -lf prints it)',
      ),
    accept_unknown_host_key: z
      .boolean()
      .default(false)
      .describe('Connect without checking the host key (refused unless true; the test reports the key seen)'),
    root: remoteRootSchema.describe('The folder whose files are loaded (keys are paths below it)'),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (!c.password && !c.private_key)
      ctx.addIssue({ code: 'custom', path: ['password'], message: 'name password or private_key' });
    if (c.passphrase && !c.private_key)
      ctx.addIssue({ code: 'custom', path: ['passphrase'], message: 'a passphrase goes with a private_key' });
    if (!c.known_host_key && !c.accept_unknown_host_key)
      ctx.addIssue({
        code: 'custom',
        path: ['known_host_key'],
        message:
          'name the server’s known_host_key (ssh-keyscan prints it), or set accept_unknown_host_key: true to connect without checking it',
      });
  })
  .describe(
    'password or private_key (or both); known_host_key, or accept_unknown_host_key: true. A file’s change marker is its size and modification time (to the second).',
  );
export type SftpConnectionConfig = z.infer<typeof sftpConnectionConfigSchema>;

/** OpenSSH's fingerprint of a public key blob (`ssh-keygen -lf`). */
const hostKeyFingerprint = (key: Buffer): string =>
  `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;

/** "[host] type base64 [comment]": the key's type and blob, or undefined for a fingerprint. */
function knownKeyOf(known: string): { type: string; blob: Buffer } | undefined {
  const fields = known.split(/\s+/);
  const typeAt = fields.findIndex((f) => /^(ssh|ecdsa|sk)-/.test(f));
  const blob = fields[typeAt + 1];
  return typeAt >= 0 && blob !== undefined
    ? { type: fields[typeAt]!, blob: Buffer.from(blob, 'base64') }
    : undefined;
}

function hostKeyMatches(known: string, key: Buffer): boolean {
  if (known.startsWith('SHA256:')) return known.replace(/=+$/, '') === hostKeyFingerprint(key);
  return knownKeyOf(known)?.blob.equals(key) ?? false;
}

/**
 * The host key algorithms to ask for: those of the known key's type, so a server holding several
 * host keys presents the one configured (an RSA key is signed with SHA-2 or, for old servers, SHA-1).
 */
function hostKeyAlgorithms(known: string | undefined): ServerHostKeyAlgorithm[] | undefined {
  const type = known ? knownKeyOf(known)?.type : undefined;
  if (!type) return undefined;
  return (
    type === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [type]
  ) as ServerHostKeyAlgorithm[];
}

interface SftpCredentials {
  password?: string;
  privateKey?: string;
  passphrase?: string;
  method: 'password' | 'private key' | 'private key or password';
}

async function credentialsFor(config: SftpConnectionConfig, ctx: SourceContext): Promise<SftpCredentials> {
  const read = (ref: SecretRef | undefined, field: string) =>
    ref ? ctx.secrets.resolve(ref, `config.${field}`) : Promise.resolve(undefined);
  const [password, privateKey, passphrase] = await Promise.all([
    read(config.password, 'password'),
    read(config.private_key, 'private_key'),
    read(config.passphrase, 'passphrase'),
  ]);
  const method = privateKey ? (password ? 'private key or password' : 'private key') : 'password';
  return { password, privateKey, passphrase, method };
}

/** One SSH connection with its SFTP channel; `usable` turns false when either ends. */
interface SftpSession {
  client: SftpClient;
  sftp: SFTPWrapper;
  sock: net.Socket;
  usable: boolean;
}

/** What a connection attempt saw of the server's host key, for the connection test. */
type HostKeySeen = { fingerprint: string; accepted: boolean };

/**
 * Connects over a socket made through the address policy (ssh2 takes it as `sock` and never
 * resolves the host itself). Failures that retrying will not fix are SourceConfigErrors that say
 * which part failed: the address, the host key, the login or the key file.
 */
async function connect(
  config: SftpConnectionConfig,
  creds: SftpCredentials,
  address: AddressPolicy,
  onHostKey?: (seen: HostKeySeen) => void,
): Promise<SftpSession> {
  const where = `${config.host}:${config.port}`;
  const state = { usable: true };
  const markEnded = () => {
    state.usable = false;
  };
  const client = new SftpClient('autoloader', { error: markEnded, end: markEnded, close: markEnded });
  const seen: { raw?: Error & { level?: string } } = {};
  let hostKeyProblem: string | undefined;
  // ssh2-sftp-client rewrites errors into messages; the raw one says which stage failed.
  client.on('error', (err: Error & { level?: string }) => {
    seen.raw ??= err;
  });
  const serverHostKey = hostKeyAlgorithms(config.known_host_key);
  const sock = guardedConnect(address, bareHost(config.host), config.port);
  try {
    const sftp = await client.connect({
      sock,
      username: config.username,
      password: creds.password,
      privateKey: creds.privateKey,
      passphrase: creds.passphrase,
      readyTimeout: 15_000,
      ...(serverHostKey ? { algorithms: { serverHostKey } } : {}),
      hostVerifier: (key: Buffer) => {
        const fingerprint = hostKeyFingerprint(key);
        const accepted = config.known_host_key
          ? hostKeyMatches(config.known_host_key, key)
          : config.accept_unknown_host_key;
        if (!accepted)
          hostKeyProblem = `host key mismatch: ${where} presented ${fingerprint}, which is not the connection’s known_host_key (refused: the server may not be the one configured)`;
        onHostKey?.({ fingerprint, accepted });
        return accepted;
      },
    });
    return Object.assign(state, { client, sftp, sock });
  } catch (err) {
    sock.destroy();
    if (hostKeyProblem) throw new SourceConfigError(hostKeyProblem);
    const cause: Error & { level?: string } = seen.raw ?? (err as Error);
    if (isAddressRefusal(cause)) throw new SourceConfigError(`${where}: ${cause.message}`);
    if (cause.level === 'client-authentication')
      throw new SourceConfigError(
        `${where}: the server refused the ${creds.method} of user "${config.username}" (wrong password or key, or a key the server does not know)`,
      );
    if (/privateKey|private key|passphrase/i.test(cause.message))
      throw new SourceConfigError(`config.private_key: ${cause.message}`);
    throw err;
  }
}

function close(session: SftpSession): void {
  session.usable = false;
  session.client.end().catch((err: unknown) => {
    // Closing a session that already ended leaves nothing to close; otherwise drop the socket.
    if ((err as { code?: string }).code !== 'ERR_NOT_CONNECTED') session.sock.destroy();
  });
}

const statusOf = (err: unknown) => (err as { code?: unknown }).code;

function readDirAt(session: SftpSession, path: string): Promise<{ filename: string; attrs: Stats }[]> {
  return new Promise((resolve, reject) =>
    session.sftp.readdir(path, (err, list) => (err ? reject(err) : resolve(list))),
  );
}

/** Files and folders only: symlinks are not followed (as for local folders). */
const entryOf = (e: { filename: string; attrs: Stats }): RemoteEntry | undefined => {
  if (!e.attrs.isDirectory() && !e.attrs.isFile()) return undefined;
  const modifiedAt = new Date(e.attrs.mtime * 1000);
  return {
    name: e.filename,
    isDir: e.attrs.isDirectory(),
    size: e.attrs.size,
    modifiedAt,
    etag: sizeMtimeEtag(e.attrs.size, modifiedAt),
  };
};

function storeOf(config: SftpConnectionConfig, creds: SftpCredentials, address: AddressPolicy): ObjectStore {
  const root = normaliseRoot(config.root);
  const base = `sftp://${config.host}:${config.port}${root}`;
  // Sessions are reused file after file (an SSH handshake costs more than a small file's read).
  const pool = new ConnectionPool<SftpSession>({
    open: () => connect(config, creds, address),
    close,
    isUsable: (s) => s.usable,
  });

  const readDir = async (session: SftpSession, dir: string) => {
    try {
      return (await readDirAt(session, remotePath(root, dir))).map(entryOf).filter((e) => e !== undefined);
    } catch (err) {
      const status = statusOf(err);
      if (status !== NO_SUCH_FILE && status !== PERMISSION_DENIED) throw err;
      const problem =
        status === NO_SUCH_FILE ? 'the folder does not exist' : 'permission denied on the folder';
      if (dir === '') throw new SourceConfigError(`${base}: ${problem}`);
      // A subfolder that vanished, or that this user may not read, holds no file it can load; the
      // connection's own folder missing is the connection's problem.
      await new Promise<void>((resolve, reject) =>
        session.sftp.stat(remotePath(root, ''), (e) => (e ? reject(e) : resolve())),
      ).catch((e: unknown) => {
        const rootStatus = statusOf(e);
        if (rootStatus !== NO_SUCH_FILE && rootStatus !== PERMISSION_DENIED) throw e;
        throw new SourceConfigError(`${base}: the folder does not exist or may not be read`);
      });
      return undefined;
    }
  };

  return {
    uri: (_bucket, key) => `${base}/${key}`,

    list: (options) => walkRemoteOn(pool, readDir, options),

    async open(_bucket, key) {
      const path = remotePath(root, key);
      const session = await pool.acquire();
      let handle: Buffer;
      let stats: Stats;
      try {
        handle = await new Promise<Buffer>((resolve, reject) =>
          session.sftp.open(path, 'r', (err, h) => (err ? reject(err) : resolve(h))),
        );
        stats = await new Promise<Stats>((resolve, reject) =>
          session.sftp.fstat(handle, (err, s) => (err ? reject(err) : resolve(s))),
        );
      } catch (err) {
        const status = statusOf(err);
        pool.release(session, status === NO_SUCH_FILE || status === PERMISSION_DENIED);
        if (status === NO_SUCH_FILE) throw new SourceFileMissingError(`${base}/${key}: file not found`);
        if (status === PERMISSION_DENIED)
          throw new SourceFileError(`${base}/${key}: permission denied on the file`);
        throw err;
      }
      // The version recorded is the one of the file opened, whatever the listing saw.
      const body: Readable = session.sftp.createReadStream(path, {
        handle,
        autoClose: true,
        highWaterMark: 256 * 1024,
      });
      body.once('close', () => pool.release(session, body.readableEnded));
      const modifiedAt = new Date(stats.mtime * 1000);
      return { body, etag: sizeMtimeEtag(stats.size, modifiedAt), size: stats.size };
    },
  };
}

export const sftpKind = defineObjectStoreKind({
  kind: 'sftp',
  summary:
    'A folder on an SFTP server (host, port, user; password or private key by reference; known host key)',
  configSchema: sftpConnectionConfigSchema,
  needsBucket: false,
  uri: (config, _bucket, key) => `sftp://${config.host}:${config.port}${normaliseRoot(config.root)}/${key}`,
  async checkConfig(config, ctx, opts) {
    for (const [field, ref] of Object.entries({
      'config.password': config.password,
      'config.private_key': config.private_key,
      'config.passphrase': config.passphrase,
    })) {
      if (ref) await ctx.secrets.check(ref, field);
    }
    if (opts.network) await checkHostAtApi(bareHost(config.host), ctx.address, 'config.host');
  },
  createStore: async (config, ctx) => storeOf(config, await credentialsFor(config, ctx), ctx.address),
  test: (config, ctx, target) => {
    let creds: SftpCredentials | undefined;
    let connecting: Promise<SftpSession> | undefined;
    let session: SftpSession | undefined;
    const root = normaliseRoot(config.root);
    const checks = runChecks([
      { name: 'address', run: () => describeAllowedHost(bareHost(config.host), ctx.address) },
      {
        name: 'credentials',
        run: async () => {
          creds = await credentialsFor(config, ctx);
          return `${creds.method} of user "${config.username}", from the connection’s references`;
        },
      },
      {
        name: 'host key',
        run: async () => {
          let seen: (s: HostKeySeen) => void = () => undefined;
          const hostKey = new Promise<HostKeySeen>((resolve) => {
            seen = resolve;
          });
          connecting = connect(config, creds!, ctx.address, seen);
          const first = await Promise.race([hostKey, connecting.then(() => undefined)]);
          if (!first) return 'checked';
          if (!first.accepted) await connecting;
          return config.known_host_key
            ? `${first.fingerprint} matches known_host_key`
            : `${first.fingerprint} accepted without checking (accept_unknown_host_key); name it as known_host_key to pin it`;
        },
      },
      {
        name: 'login',
        run: async () => {
          session = await connecting!;
          return `logged in as "${config.username}" with ${creds!.method}`;
        },
      },
      {
        name: 'folder',
        run: async () => {
          const dir = target.prefix?.includes('/')
            ? target.prefix.slice(0, target.prefix.lastIndexOf('/'))
            : '';
          const path = remotePath(root, dir);
          const entries = await readDirAt(session!, path).catch((err: unknown) => {
            const status = statusOf(err);
            throw new Error(
              status === NO_SUCH_FILE
                ? `${path} does not exist`
                : status === PERMISSION_DENIED
                  ? `permission denied on ${path}`
                  : err instanceof Error
                    ? err.message
                    : String(err),
            );
          });
          return `${path} is readable (${entries.length} entr${entries.length === 1 ? 'y' : 'ies'})`;
        },
      },
    ]);
    return checks.finally(() => {
      // A connection still being made when a check timed out is closed once it is up.
      connecting?.then(close, (err: unknown) => err);
    });
  },
});
