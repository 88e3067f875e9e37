/**
 * A small read-only SFTP server for tests, in-process, on ssh2's server side: one user, who logs in
 * with a password or a public key, served one folder as `/`. It needs no root, no system package
 * and no child process, and its host and client keys are made fresh for every run.
 */
import { timingSafeEqual } from 'node:crypto';
import { constants } from 'node:fs';
import { type FileHandle, lstat, mkdir, open, readdir, stat } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import ssh2, { type Attributes, type Connection, type FileEntry, type SFTPWrapper } from 'ssh2';
import { type LogSink, toLogger } from './service.js';

const { Server, utils } = ssh2;
const { STATUS_CODE, OPEN_MODE } = utils.sftp;

export interface SftpServerOptions {
  /** The folder served as `/`. */
  root: string;
  username?: string;
  password?: string;
  /** 0 (default) = any free port. */
  port?: number;
  log: LogSink;
}

/** Plain data, so vitest can `provide` it to test files. */
export interface SftpEndpoint {
  host: string;
  port: number;
  root: string;
  username: string;
  password: string;
  /** The user's private key (OpenSSH format), whose public half the server accepts. */
  privateKey: string;
  /** The server's host key as known_hosts lists it ("ssh-ed25519 AAAA…"). */
  hostPublicKey: string;
}

export interface SftpServer extends SftpEndpoint {
  stop(): Promise<void>;
}

function same(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

function attrsOf(s: Awaited<ReturnType<typeof stat>>): Attributes {
  return {
    mode: Number(s.mode),
    uid: Number(s.uid),
    gid: Number(s.gid),
    size: Number(s.size),
    atime: Math.floor(Number(s.atimeMs) / 1000),
    mtime: Math.floor(Number(s.mtimeMs) / 1000),
  };
}

const statusOf = (err: unknown): number => {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT' || code === 'ENOTDIR') return STATUS_CODE.NO_SUCH_FILE;
  if (code === 'EACCES' || code === 'EPERM') return STATUS_CODE.PERMISSION_DENIED;
  return STATUS_CODE.FAILURE;
};

/** The SFTP subsystem over one folder: paths are resolved inside it, and only reads are served. */
function serveFolder(sftp: SFTPWrapper, root: string): void {
  const files = new Map<number, FileHandle>();
  const dirs = new Map<number, { path: string; done: boolean }>();
  let next = 0;
  const newHandle = () => {
    const h = Buffer.alloc(4);
    h.writeUInt32BE(next++);
    return h;
  };
  const virtual = (p: string) => path.posix.normalize(`/${p}`);
  const real = (p: string) => path.join(root, virtual(p));
  const reply = (reqId: number, work: () => Promise<void>) => {
    work().catch((err: unknown) => sftp.status(reqId, statusOf(err)));
  };

  sftp.on('REALPATH', (reqId, p) => {
    const v = virtual(p);
    sftp.name(reqId, [{ filename: v, longname: v, attrs: {} as Attributes }]);
  });
  sftp.on('STAT', (reqId, p) => reply(reqId, async () => sftp.attrs(reqId, attrsOf(await stat(real(p))))));
  sftp.on('LSTAT', (reqId, p) => reply(reqId, async () => sftp.attrs(reqId, attrsOf(await lstat(real(p))))));
  sftp.on('OPENDIR', (reqId, p) =>
    reply(reqId, async () => {
      if (!(await stat(real(p))).isDirectory())
        throw Object.assign(new Error('not a folder'), { code: 'ENOTDIR' });
      const h = newHandle();
      dirs.set(h.readUInt32BE(0), { path: real(p), done: false });
      sftp.handle(reqId, h);
    }),
  );
  sftp.on('READDIR', (reqId, handle) =>
    reply(reqId, async () => {
      const dir = dirs.get(handle.readUInt32BE(0));
      if (!dir) return sftp.status(reqId, STATUS_CODE.FAILURE);
      if (dir.done) return sftp.status(reqId, STATUS_CODE.EOF);
      dir.done = true;
      const names = await readdir(dir.path);
      const entries: FileEntry[] = [];
      for (const name of names) {
        const s = await lstat(path.join(dir.path, name));
        const type = s.isDirectory() ? 'd' : s.isSymbolicLink() ? 'l' : '-';
        entries.push({
          filename: name,
          longname: `${type}r--r--r-- 1 u g ${s.size} Jan 1 00:00 ${name}`,
          attrs: attrsOf(s),
        });
      }
      sftp.name(reqId, entries);
    }),
  );
  sftp.on('OPEN', (reqId, p, flags) =>
    reply(reqId, async () => {
      if (flags & (OPEN_MODE.WRITE | OPEN_MODE.APPEND | OPEN_MODE.CREAT | OPEN_MODE.TRUNC))
        return sftp.status(reqId, STATUS_CODE.PERMISSION_DENIED);
      const fh = await open(real(p), constants.O_RDONLY);
      const h = newHandle();
      files.set(h.readUInt32BE(0), fh);
      sftp.handle(reqId, h);
    }),
  );
  sftp.on('READ', (reqId, handle, offset, length) =>
    reply(reqId, async () => {
      const fh = files.get(handle.readUInt32BE(0));
      if (!fh) return sftp.status(reqId, STATUS_CODE.FAILURE);
      const buf = Buffer.alloc(length);
      const { bytesRead } = await fh.read(buf, 0, length, offset);
      if (bytesRead === 0) return sftp.status(reqId, STATUS_CODE.EOF);
      sftp.data(reqId, buf.subarray(0, bytesRead));
    }),
  );
  sftp.on('FSTAT', (reqId, handle) =>
    reply(reqId, async () => {
      const fh = files.get(handle.readUInt32BE(0));
      if (!fh) return sftp.status(reqId, STATUS_CODE.FAILURE);
      sftp.attrs(reqId, attrsOf(await fh.stat()));
    }),
  );
  sftp.on('CLOSE', (reqId, handle) =>
    reply(reqId, async () => {
      const id = handle.readUInt32BE(0);
      const fh = files.get(id);
      files.delete(id);
      dirs.delete(id);
      await fh?.close();
      sftp.status(reqId, STATUS_CODE.OK);
    }),
  );
  sftp.on('close', () => {
    for (const fh of files.values()) void fh.close();
    files.clear();
  });
}

export async function startSftpServer(opts: SftpServerOptions): Promise<SftpServer> {
  const log = toLogger(opts.log);
  const username = opts.username ?? 'loader';
  const password = opts.password ?? 'sftp-test-password';
  const hostKey = utils.generateKeyPairSync('ed25519');
  const userKey = utils.generateKeyPairSync('ed25519');
  const allowedKey = utils.parseKey(userKey.public);
  if (allowedKey instanceof Error) throw allowedKey;
  const connections = new Set<Connection>();
  await mkdir(opts.root, { recursive: true });

  const server = new Server({ hostKeys: [hostKey.private] }, (client) => {
    connections.add(client);
    client.on('close', () => connections.delete(client));
    // A client's failure (a refused host key, a dropped connection) ends that client only.
    client.on('error', () => client.end());
    client.on('authentication', (ctx) => {
      if (!same(Buffer.from(ctx.username), Buffer.from(username))) return ctx.reject();
      if (ctx.method === 'password' && same(Buffer.from(ctx.password), Buffer.from(password)))
        return ctx.accept();
      if (
        ctx.method === 'publickey' &&
        ctx.key.algo === allowedKey.type &&
        same(ctx.key.data, allowedKey.getPublicSSH()) &&
        (!ctx.signature || allowedKey.verify(ctx.blob!, ctx.signature, ctx.hashAlgo))
      )
        return ctx.accept();
      ctx.reject(['password', 'publickey']);
    });
    client.on('ready', () => {
      client.on('session', (accept) => {
        accept().on('sftp', (acceptSftp) => serveFolder(acceptSftp(), opts.root));
      });
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  log.info({ port, root: opts.root }, 'SFTP test server ready');
  return {
    host: '127.0.0.1',
    port,
    root: opts.root,
    username,
    password,
    privateKey: userKey.private,
    hostPublicKey: hostKey.public.trim(),
    stop: () =>
      new Promise<void>((resolve) => {
        for (const c of connections) c.end();
        server.close(() => resolve());
      }),
  };
}
