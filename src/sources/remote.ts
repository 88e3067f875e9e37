import { z } from 'zod';
import { AppError } from '../domain/errors.js';
import { type AddressPolicy, resolveAllowed } from '../net/address-policy.js';
import type { FileMeta, ListOptions } from './types.js';

/**
 * What the stores that reach a host the tenant names share: the host's check at the API and in a
 * connection test, the lexicographic walk of a remote folder tree (SFTP, FTP), and the small pool
 * their connections are reused from.
 */

/** A host name or IP literal, as a tenant names an SFTP or FTP server (no scheme, port or path). */
export const hostSchema = z
  .string()
  .min(1)
  .max(253)
  .regex(/^(\[[0-9A-Fa-f:.]+\]|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?)$/, {
    message: 'a host name or IP address, without scheme, port or path',
  });

/** The host as sockets and the address policy take it (an IPv6 literal without brackets). */
export const bareHost = (host: string): string => host.replace(/^\[|\]$/g, '');

/** An absolute folder on a server. */
export const remoteRootSchema = z
  .string()
  .max(4096)
  .regex(/^\/[^\0]*$/, { message: 'an absolute folder, such as / or /data/landing' })
  .refine((p) => !p.split('/').includes('..'), { message: 'may not contain ".."' })
  .default('/');

/** A root folder without its trailing slashes ('' for the server's root). */
export const normaliseRoot = (root: string): string => root.replace(/\/+$/, '');

export const isAddressRefusal = (err: unknown): err is Error & { code: 'ENDPOINT_NOT_ALLOWED' } =>
  err instanceof Error && (err as { code?: string }).code === 'ENDPOINT_NOT_ALLOWED';

/**
 * A connection's host checked at creation (`network`: the name is resolved): a refused address is
 * `ENDPOINT_NOT_ALLOWED` on `field`. A name that does not resolve now may later, and every
 * connection is checked again when it is made, so that is not an error here.
 */
export async function checkHostAtApi(host: string, address: AddressPolicy, field: string): Promise<void> {
  try {
    await resolveAllowed(host, address);
  } catch (err) {
    if (isAddressRefusal(err)) throw new AppError('ENDPOINT_NOT_ALLOWED', err.message, { field });
    if (!(err instanceof Error && (err as NodeJS.ErrnoException).code === 'ENOTFOUND')) throw err;
  }
}

/** A connection test's first check: where the host resolves, each address allowed. */
export async function describeAllowedHost(host: string, address: AddressPolicy): Promise<string> {
  const resolved = await resolveAllowed(host, address);
  return `${host} resolves to ${resolved.map((a) => a.address).join(', ')} (allowed)`;
}

/** One entry of a remote folder, as an SFTP or FTP server lists it. */
export interface RemoteEntry {
  name: string;
  isDir: boolean;
  size: number;
  modifiedAt: Date | null;
  /** The change marker, computed the same way as the store's `open` reports it. */
  etag: string | null;
}

export const listingPageSize = 1000;

/**
 * Walks a remote folder tree in the order S3 lists keys (a folder `a` sorts as `a/`), so a listing
 * resumes after a key whatever the store, and yields pages of at most `pageSize` files. Held in
 * memory: one page, and the entries of the folders on the path to the one being read. Folders that
 * cannot hold a key under `prefix` or after `startAfter` are not read at all.
 *
 * `readDir('')` is the connection's root; it answers undefined for a folder that vanished.
 */
export async function* walkRemote(
  readDir: (dir: string) => Promise<RemoteEntry[] | undefined>,
  { prefix, startAfter }: Pick<ListOptions, 'prefix' | 'startAfter'>,
  pageSize = listingPageSize,
): AsyncGenerator<FileMeta[]> {
  let page: FileMeta[] = [];
  // Every key under the prefix lies in the folder the prefix names up to its last '/'.
  const base = prefix.includes('/') ? prefix.slice(0, prefix.lastIndexOf('/')) : '';
  async function* walk(dir: string): AsyncGenerator<FileMeta> {
    const entries = await readDir(dir);
    if (!entries) return;
    const sorted = entries
      .filter((e) => e.name !== '.' && e.name !== '..' && !e.name.includes('/'))
      .map((e) => ({ entry: e, sortKey: e.isDir ? `${e.name}/` : e.name }))
      .sort((a, b) => (a.sortKey < b.sortKey ? -1 : a.sortKey > b.sortKey ? 1 : 0));
    for (const { entry } of sorted) {
      const key = dir ? `${dir}/${entry.name}` : entry.name;
      if (entry.isDir) {
        const sub = `${key}/`;
        if (!sub.startsWith(prefix) && !prefix.startsWith(sub)) continue;
        // Every key below `sub` sorts before a `startAfter` that is past `sub` without starting with it.
        if (startAfter && startAfter > sub && !startAfter.startsWith(sub)) continue;
        yield* walk(key);
      } else if (key.startsWith(prefix) && (!startAfter || key > startAfter)) {
        yield { key, size: entry.size, modifiedAt: entry.modifiedAt, etag: entry.etag };
      }
    }
  }
  for await (const file of walk(base)) {
    page.push(file);
    if (page.length >= pageSize) {
      yield page;
      page = [];
    }
  }
  if (page.length > 0) yield page;
}

/**
 * Connections to one server (SFTP sessions, FTP control connections), reused one user at a time
 * and closed after a quiet spell, so a store that is no longer used leaves nothing open. A
 * connection that failed is not given back.
 */
export class ConnectionPool<C> {
  private readonly idle: { conn: C; timer: NodeJS.Timeout }[] = [];

  constructor(
    private readonly opts: {
      open: () => Promise<C>;
      close: (conn: C) => void;
      isUsable: (conn: C) => boolean;
      /** How long an unused connection is kept. */
      idleMs?: number;
      maxIdle?: number;
    },
  ) {}

  async acquire(): Promise<C> {
    while (this.idle.length > 0) {
      const { conn, timer } = this.idle.pop()!;
      clearTimeout(timer);
      if (this.opts.isUsable(conn)) return conn;
      this.opts.close(conn);
    }
    return this.opts.open();
  }

  release(conn: C, reusable: boolean): void {
    if (!reusable || !this.opts.isUsable(conn) || this.idle.length >= (this.opts.maxIdle ?? 4)) {
      this.opts.close(conn);
      return;
    }
    const timer = setTimeout(() => {
      const i = this.idle.findIndex((e) => e.conn === conn);
      if (i >= 0) this.idle.splice(i, 1);
      this.opts.close(conn);
    }, this.opts.idleMs ?? 10_000);
    timer.unref();
    this.idle.push({ conn, timer });
  }
}

/** Change marker of a file known by size and modification time (SFTP, FTP; as local folders). */
export const sizeMtimeEtag = (size: number, modifiedAt: Date | null): string =>
  `${size}-${modifiedAt ? modifiedAt.getTime() : 0}`;

/** The path on the server of a key (or folder, '' for the root itself) under a normalised root. */
export const remotePath = (root: string, key: string): string => (key ? `${root}/${key}` : root || '/');

/**
 * `walkRemote` on one session of a pool (SFTP, FTP): the session goes back to the pool for reuse
 * only when the walk ran to its end; a listing that failed or was abandoned closes it.
 */
export async function* walkRemoteOn<S>(
  pool: ConnectionPool<S>,
  readDir: (session: S, dir: string) => Promise<RemoteEntry[] | undefined>,
  options: Pick<ListOptions, 'prefix' | 'startAfter'>,
): AsyncGenerator<FileMeta[]> {
  const session = await pool.acquire();
  let reusable = false;
  try {
    yield* walkRemote((dir) => readDir(session, dir), options);
    reusable = true;
  } finally {
    pool.release(session, reusable);
  }
}
