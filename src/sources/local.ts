import { open, readdir, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { AppError } from '../domain/errors.js';
import { defineObjectStoreKind, runChecks } from './kind.js';
import {
  type FileMeta,
  type ObjectStore,
  SourceConfigError,
  SourceFileError,
  SourceFileMissingError,
} from './types.js';

export const localConnectionConfigSchema = z
  .object({
    path: z.string().min(1).max(4096).describe('An absolute folder under one of the tenant’s local roots'),
  })
  .strict();
export type LocalConnectionConfig = z.infer<typeof localConnectionConfigSchema>;

const pageSize = 1000;

/**
 * The one answer for every folder a tenant may not read — outside its roots, through a symlink out,
 * the service's own files, another tenant's root — so the answer does not tell them apart.
 */
export const pathNotAllowed = () =>
  new AppError('PATH_NOT_ALLOWED', 'config.path is not a folder this tenant may read', {
    field: 'config.path',
    help: 'The operator lists the folders each tenant may read (its policy’s local_roots)',
  });

const inside = (root: string, p: string) =>
  p === root || p.startsWith(root.endsWith(path.sep) ? root : root + path.sep);

function isErrno(err: unknown, code: string): boolean {
  return err instanceof Error && (err as NodeJS.ErrnoException).code === code;
}

/**
 * The real folder a path names, if it lies inside one of the roots after every symlink is followed
 * (roots are resolved the same way). `undefined` when it does not, or does not exist.
 */
export async function resolveInsideRoots(p: string, roots: string[]): Promise<string | undefined> {
  if (!path.isAbsolute(p)) return undefined;
  let real: string;
  try {
    real = await realpath(p);
  } catch (err) {
    // Missing, not a folder, unreadable, a symlink loop, a name too long: not a folder it may read.
    if (err instanceof Error && typeof (err as NodeJS.ErrnoException).code === 'string') return undefined;
    throw err;
  }
  for (const root of roots) {
    const realRoot = await realpath(root).catch((err: unknown) => {
      if (isErrno(err, 'ENOENT')) return undefined;
      throw err;
    });
    if (realRoot && inside(realRoot, real)) return real;
  }
  return undefined;
}

/**
 * Walks a folder in the same lexicographic key order S3 lists in, so a listing can resume after a
 * key whatever the store. Keys use '/' separators, relative to the connection's folder. Symlinks are
 * not followed.
 */
async function* walk(root: string, dir: string): AsyncGenerator<string> {
  const entries = await readdir(path.join(root, dir), { withFileTypes: true });
  const names = entries
    .filter((e) => e.isFile() || e.isDirectory())
    .map((e) => (e.isDirectory() ? `${e.name}/` : e.name))
    .sort();
  for (const name of names) {
    const key = dir ? `${dir}/${name}` : name;
    if (name.endsWith('/')) yield* walk(root, key.slice(0, -1));
    else yield key;
  }
}

export function createLocalStore(config: LocalConnectionConfig, roots: string[]): ObjectStore {
  /** Checked on every use: a root or a folder can be replaced by a symlink at any time. */
  const folder = async () => {
    const real = await resolveInsideRoots(config.path, roots);
    if (!real) throw new SourceConfigError(`folder ${config.path} is not one this tenant may read`);
    return real;
  };
  const fileIn = async (root: string, key: string) => {
    const p = path.resolve(root, key);
    if (!inside(root, p) || p === root)
      throw new SourceFileMissingError(`file ${key} is outside the connection folder`);
    let real: string;
    try {
      real = await realpath(p);
    } catch (err) {
      if (isErrno(err, 'ENOENT')) throw new SourceFileMissingError(`file ${key} not found`);
      throw err;
    }
    // The file itself, or a folder on its way, may be a symlink leading out.
    if (!inside(root, real)) throw new SourceFileMissingError(`file ${key} is outside the connection folder`);
    return real;
  };

  return {
    // The URI names the folder as configured (stable, and what users see); reads go to its real path.
    uri: (_bucket, key) => `file://${path.resolve(config.path)}/${key}`,

    async *list({ prefix, startAfter }) {
      const root = await folder();
      let page: FileMeta[] = [];
      for await (const key of walk(root, '')) {
        if (prefix && !key.startsWith(prefix)) continue;
        if (startAfter && key <= startAfter) continue;
        const s = await stat(path.join(root, key));
        // No content hash is cheap for a folder: size + mtime changes when a file is rewritten.
        page.push({ key, size: s.size, modifiedAt: s.mtime, etag: `${s.size}-${Math.trunc(s.mtimeMs)}` });
        if (page.length >= pageSize) {
          yield page;
          page = [];
        }
      }
      if (page.length > 0) yield page;
    },

    async open(_bucket, key) {
      const real = await fileIn(await folder(), key);
      const s = await stat(real);
      if (!s.isFile()) throw new SourceFileError(`${key} is not a regular file`);
      // Opened here, so a file the service may not read fails now, as this file's error.
      const handle = await open(real, 'r').catch((err: unknown) => {
        if (isErrno(err, 'EACCES') || isErrno(err, 'EPERM'))
          throw new SourceFileError(`file ${key} is not readable`);
        throw err;
      });
      return {
        body: handle.createReadStream({ highWaterMark: 1024 * 1024, autoClose: true }),
        etag: `${s.size}-${Math.trunc(s.mtimeMs)}`,
        size: s.size,
      };
    },
  };
}

export const localKind = defineObjectStoreKind({
  kind: 'local',
  summary: 'a folder on the workers, under one of the tenant’s local roots',
  configSchema: localConnectionConfigSchema,
  needsBucket: false,
  uri: (config, _bucket, key) => `file://${path.resolve(config.path)}/${key}`,
  async checkConfig(config, ctx) {
    if (!(await resolveInsideRoots(config.path, ctx.policy.local_roots))) throw pathNotAllowed();
  },
  createStore: async (config, ctx) => createLocalStore(config, ctx.policy.local_roots),
  test: (config, ctx, target) =>
    runChecks([
      {
        name: 'folder',
        run: async () => {
          const real = await resolveInsideRoots(config.path, ctx.policy.local_roots);
          if (!real) throw new Error('not a folder this tenant may read');
          const entries = await readdir(path.join(real, target.prefix ?? ''));
          return `readable (${entries.length} entr${entries.length === 1 ? 'y' : 'ies'})`;
        },
      },
    ]),
});
