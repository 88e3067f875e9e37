import net from 'node:net';
import { PassThrough, Transform } from 'node:stream';
import type { ConnectionOptions } from 'node:tls';
import { Client, type FileInfo, FTPError } from 'basic-ftp';
import { z } from 'zod';
import { AddressNotAllowedError, type AddressPolicy, guardedLookup, refusal } from '../net/address-policy.js';
import { secretRefSchema } from '../secrets/refs.js';
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

export const ftpConnectionConfigSchema = z
  .object({
    host: hostSchema,
    port: z.number().int().min(1).max(65535).default(21),
    username: z.string().min(1).max(256),
    password: secretRefSchema,
    root: remoteRootSchema.describe('The folder whose files are loaded (keys are paths below it)'),
    tls: z
      .enum(['none', 'explicit', 'implicit'])
      .default('none')
      .describe(
        'FTPS: "explicit" (AUTH TLS on the FTP port), "implicit" (TLS from the start, often port 990)',
      ),
    tls_ca: z
      .string()
      .max(65_536)
      .optional()
      .describe(
        'PEM certificate(s) to trust besides the system’s: a private CA, or the server’s own certificate',
      ),
    tls_reject_unauthorized: z
      .boolean()
      .default(true)
      .describe('false accepts any server certificate (encrypted, but the server is not authenticated)'),
    passive_host: z
      .enum(['control', 'announced'])
      .default('control')
      .describe(
        'Passive mode (the only one: active mode would have the server connect to the workers). "control": data connections go to the control connection’s address (EPSV, or PASV announcing that address); "announced": to the address PASV announces. Either way the address policy checks every data connection.',
      ),
  })
  .strict()
  .describe(
    'A file’s change marker is its size and modification time, to the second (MLSD’s facts, or MDTM; a server with neither: the time LIST shows).',
  );
export type FtpConnectionConfig = z.infer<typeof ftpConnectionConfigSchema>;

/** One logged-in control connection, and what the policy refused on it (refusals lose their code in basic-ftp's messages). */
interface FtpSession {
  client: Client;
  refusals: string[];
  /** The server answers MDTM: a file's time can be read alone (and LIST listings get exact times). */
  mdtm: boolean;
  /** Where the last data connection went, for the connection test. */
  lastDataPeer?: string;
}

/**
 * basic-ftp makes every plain socket — the control connection and each passive data connection,
 * whatever address EPSV or PASV gave — through its context's `_newSocket`. Ours resolves through
 * the address policy (an IP literal, as PASV gives, is checked before connecting), so a server
 * cannot point a data connection at an address the tenant could not name itself.
 */
function guardedSocketFactory(policy: AddressPolicy, session: FtpSession) {
  const lookup = guardedLookup(policy);
  const policed: net.LookupFunction = (hostname, options, callback) =>
    lookup(hostname, options, ((err: NodeJS.ErrnoException | null, ...rest: unknown[]) => {
      if (isAddressRefusal(err)) session.refusals.push(err.message);
      (callback as (...args: unknown[]) => void)(err, ...rest);
    }) as typeof callback);
  return (): net.Socket => {
    const socket = new net.Socket();
    const connect = socket.connect.bind(socket) as (
      opts: net.TcpNetConnectOpts,
      listener?: () => void,
    ) => net.Socket;
    socket.connect = ((opts: net.TcpNetConnectOpts, listener?: () => void) => {
      const host = bareHost(opts.host ?? '');
      const why = net.isIP(host) !== 0 ? refusal(host, host, policy) : undefined;
      if (why) {
        session.refusals.push(why);
        process.nextTick(() => socket.destroy(new AddressNotAllowedError(why)));
        return socket;
      }
      // The control socket is the context's own; any other is a data connection.
      if (socket !== session.client.ftp.socket)
        socket.once('connect', () => {
          session.lastDataPeer = `${socket.remoteAddress}:${socket.remotePort}`;
        });
      return connect({ ...opts, lookup: policed }, listener);
    }) as typeof socket.connect;
    return socket;
  };
}

const refusedBy = (session: { refusals: string[] }) => session.refusals.at(-1);

/** TLS errors about the server's certificate: configuration, not an outage. */
const certificateError = (err: unknown) =>
  /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS_CERT_ALTNAME/.test(
    String((err as { code?: unknown }).code ?? ''),
  );

async function connect(
  config: FtpConnectionConfig,
  password: string,
  address: AddressPolicy,
): Promise<FtpSession> {
  const where = `${config.host}:${config.port}`;
  const host = bareHost(config.host);
  const client = new Client(30_000, { allowSeparateTransferHost: config.passive_host === 'announced' });
  const session: FtpSession = { client, refusals: [], mdtm: false };
  client.ftp._newSocket = guardedSocketFactory(address, session);
  let secureOptions: ConnectionOptions | undefined;
  if (config.tls !== 'none') {
    secureOptions = {
      ca: config.tls_ca,
      rejectUnauthorized: config.tls_reject_unauthorized,
      servername: net.isIP(host) === 0 ? host : undefined,
    };
    if (config.tls === 'implicit') {
      // Implicit TLS is dialled by tls.connect, not through `_newSocket`: the same checks, by hand.
      const why = net.isIP(host) !== 0 ? refusal(host, host, address) : undefined;
      if (why) throw new SourceConfigError(`${where}: ${why}`);
      Object.assign(secureOptions, { lookup: guardedLookup(address) });
    }
  }
  try {
    await client.access({
      host,
      port: config.port,
      user: config.username,
      password,
      secure: config.tls === 'none' ? false : config.tls === 'implicit' ? 'implicit' : true,
      secureOptions,
    });
    session.mdtm = (await client.features()).has('MDTM');
    return session;
  } catch (err) {
    client.close();
    const refused = refusedBy(session) ?? (isAddressRefusal(err) ? err.message : undefined);
    if (refused) throw new SourceConfigError(`${where}: ${refused}`);
    if (err instanceof FTPError && err.code === 530)
      throw new SourceConfigError(
        `${where}: the server refused the password of user "${config.username}" (${err.message.trim()})`,
      );
    if (
      err instanceof FTPError &&
      (err.code === 534 || err.code === 431 || err.code === 504) &&
      config.tls !== 'none'
    )
      throw new SourceConfigError(`${where}: the server does not offer TLS (${err.message.trim()})`);
    if (certificateError(err))
      throw new SourceConfigError(
        `${where}: the server’s TLS certificate is not trusted (${(err as Error).message}); name its CA in tls_ca`,
      );
    throw err;
  }
}

/** Seconds are what MLSD, MDTM and LIST agree on. */
const toSeconds = (d: Date) => new Date(Math.floor(d.getTime() / 1000) * 1000);

/** One entry's change marker; `mtime` is MLSD's fact or MDTM's answer, both to the second. */
function markerOf(entry: FileInfo, mtime: Date | undefined): Pick<RemoteEntry, 'modifiedAt' | 'etag'> {
  if (mtime) {
    const at = toSeconds(mtime);
    return { modifiedAt: at, etag: sizeMtimeEtag(entry.size, at) };
  }
  // A server with neither MLSD nor MDTM: LIST's own time text (to the minute, or the day) is all there is.
  return { modifiedAt: null, etag: `${entry.size}-${entry.rawModifiedAt}` };
}

function storeOf(config: FtpConnectionConfig, password: string, address: AddressPolicy): ObjectStore {
  const root = normaliseRoot(config.root);
  const base = `${config.tls === 'none' ? 'ftp' : 'ftps'}://${config.host}:${config.port}${root}`;
  // One transfer at a time per control connection: a few are kept, each reused file after file.
  const pool = new ConnectionPool<FtpSession>({
    open: () => connect(config, password, address),
    close: (s) => s.client.close(),
    isUsable: (s) => !s.client.closed,
  });

  const translate = (err: unknown, session: FtpSession, what: string): unknown => {
    const refused = refusedBy(session);
    if (refused || isAddressRefusal(err))
      return new SourceConfigError(`${what}: ${refused ?? (err as Error).message}`);
    if (err instanceof FTPError && err.code === 530)
      return new SourceConfigError(`${what}: ${err.message.trim()}`);
    if (certificateError(err)) return new SourceConfigError(`${what}: ${(err as Error).message}`);
    return err;
  };

  const listDir = async (session: FtpSession, dir: string): Promise<RemoteEntry[] | undefined> => {
    let entries: FileInfo[];
    try {
      entries = await session.client.list(remotePath(root, dir));
    } catch (err) {
      // 550: the folder does not exist or may not be read.
      if (!(err instanceof FTPError && err.code === 550))
        throw translate(err, session, `listing ${base}/${dir}`);
      const missing = new SourceConfigError(
        `${base}: ${err.message.trim()} (the folder does not exist or may not be read)`,
      );
      if (dir === '') throw missing;
      // A subfolder that vanished holds no file; the connection's own folder missing is its problem.
      await session.client.cd(remotePath(root, '')).catch((e: unknown) => {
        throw e instanceof FTPError && e.code === 550 ? missing : e;
      });
      return undefined;
    }
    const out: RemoteEntry[] = [];
    for (const e of entries) {
      if (!e.isDirectory && !e.isFile) continue;
      const key = dir ? `${dir}/${e.name}` : e.name;
      // LIST gives no exact time; a server with MDTM is asked for each file, as `open` will.
      const mtime =
        e.modifiedAt ??
        (e.isFile && session.mdtm ? await session.client.lastMod(remotePath(root, key)) : undefined);
      out.push({ name: e.name, isDir: e.isDirectory, size: e.size, ...markerOf(e, mtime) });
    }
    return out;
  };

  /** The marker `list` gives this file, read for the file alone. */
  const versionOf = async (session: FtpSession, key: string): Promise<{ size: number; etag: string }> => {
    const path = remotePath(root, key);
    if (session.mdtm) {
      const size = await session.client.size(path);
      const at = toSeconds(await session.client.lastMod(path));
      return { size, etag: sizeMtimeEtag(size, at) };
    }
    const dir = key.includes('/') ? key.slice(0, key.lastIndexOf('/')) : '';
    const name = key.slice(dir ? dir.length + 1 : 0);
    const entry = (await session.client.list(remotePath(root, dir))).find((e) => e.name === name && e.isFile);
    if (!entry) throw new SourceFileMissingError(`${base}/${key}: file not found`);
    return { size: entry.size, etag: markerOf(entry, entry.modifiedAt).etag! };
  };

  return {
    uri: (_bucket, key) => `${base}/${key}`,

    list: (options) => walkRemoteOn(pool, listDir, options),

    async open(_bucket, key) {
      const what = `reading ${base}/${key}`;
      const session = await pool.acquire();
      let version: { size: number; etag: string };
      try {
        version = await versionOf(session, key);
      } catch (err) {
        const fileLevel = err instanceof SourceFileError || (err instanceof FTPError && err.code === 550);
        pool.release(session, fileLevel);
        if (err instanceof FTPError && err.code === 550)
          throw new SourceFileError(`${what}: ${err.message.trim()} (not found, or may not be read)`);
        throw translate(err, session, what);
      }
      const body = new PassThrough({ highWaterMark: 1024 * 1024 });
      let started: () => void = () => undefined;
      const firstChunk = new Promise<void>((resolve) => {
        started = resolve;
      });
      const tap = new Transform({
        transform(chunk, _encoding, done) {
          started();
          done(null, chunk);
        },
      });
      tap.pipe(body);
      let settled = false;
      const transfer = session.client.downloadTo(tap, remotePath(root, key));
      transfer.then(
        () => {
          settled = true;
          pool.release(session, true);
        },
        (err: unknown) => {
          settled = true;
          body.destroy(translate(err, session, what) as Error);
          pool.release(session, false);
        },
      );
      // A reader that gives up early: abort the transfer (its control connection is not reused).
      body.once('close', () => {
        if (!settled && !body.readableEnded) session.client.close();
      });
      try {
        // RETR's refusal (550: gone, or not readable) arrives before any byte: it is the file's failure.
        await Promise.race([firstChunk, transfer]);
      } catch (err) {
        if (err instanceof FTPError && err.code === 550)
          throw new SourceFileError(`${what}: ${err.message.trim()} (not found, or may not be read)`);
        throw translate(err, session, what);
      }
      return { body, etag: version.etag, size: version.size };
    },
  };
}

const passwordOf = (config: FtpConnectionConfig, ctx: SourceContext) =>
  ctx.secrets.resolve(config.password, 'config.password');

export const ftpKind = defineObjectStoreKind({
  kind: 'ftp',
  summary:
    'A folder on an FTP or FTPS server (host, port, user, password by reference; passive mode; TLS options)',
  configSchema: ftpConnectionConfigSchema,
  needsBucket: false,
  uri: (config, _bucket, key) =>
    `${config.tls === 'none' ? 'ftp' : 'ftps'}://${config.host}:${config.port}${normaliseRoot(config.root)}/${key}`,
  async checkConfig(config, ctx, opts) {
    await ctx.secrets.check(config.password, 'config.password');
    if (opts.network) await checkHostAtApi(bareHost(config.host), ctx.address, 'config.host');
  },
  createStore: async (config, ctx) => storeOf(config, await passwordOf(config, ctx), ctx.address),
  test: (config, ctx, target) => {
    let password: string | undefined;
    let session: FtpSession | undefined;
    const root = normaliseRoot(config.root);
    return runChecks([
      { name: 'address', run: () => describeAllowedHost(bareHost(config.host), ctx.address) },
      {
        name: 'credentials',
        run: async () => {
          password = await passwordOf(config, ctx);
          return `password of user "${config.username}", from the connection’s reference`;
        },
      },
      {
        name: 'login',
        run: async () => {
          session = await connect(config, password!, ctx.address);
          const socket = session.client.ftp.socket;
          const tls =
            'getProtocol' in socket
              ? ` over ${config.tls} TLS (${socket.getProtocol()})`
              : ' without TLS: the password and data travel in clear text';
          return `logged in as "${config.username}"${tls}`;
        },
      },
      {
        name: 'folder',
        run: async () => {
          const dir = target.prefix?.includes('/')
            ? target.prefix.slice(0, target.prefix.lastIndexOf('/'))
            : '';
          const path = remotePath(root, dir);
          const entries = await session!.client.list(path).catch((err: unknown) => {
            const refused = refusedBy(session!);
            if (refused) throw new Error(`the data connection was refused: ${refused}`);
            throw err;
          });
          const command = session!.client.availableListCommands[0] ?? 'LIST';
          return `${path} is readable (${entries.length} entr${entries.length === 1 ? 'y' : 'ies'}, listed with ${command}; data connection to ${session!.lastDataPeer ?? 'the server'}, allowed by the address policy)`;
        },
      },
    ]).finally(() => session?.client.close());
  },
});
