import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { AppError } from '../domain/errors.js';
import { defineObjectStoreKind } from './kind.js';
import { type FileMeta, type ObjectStore, SourceConfigError, SourceFileMissingError } from './types.js';

export const localConnectionConfigSchema = z.object({
  path: z.string().min(1).describe('Absolute folder, or relative to the service working directory'),
});
export type LocalConnectionConfig = z.infer<typeof localConnectionConfigSchema>;

const pageSize = 1000;

/** The folder a local connection reads, checked against the roots the operator allowed. */
export function resolveLocalRoot(config: LocalConnectionConfig, allowedRoots: string[]): string | undefined {
  const root = path.resolve(config.path);
  const allowed = allowedRoots.some(
    (r) => root === r || root.startsWith(r.endsWith(path.sep) ? r : r + path.sep),
  );
  return allowed ? root : undefined;
}

function isErrno(err: unknown, code: string): boolean {
  return err instanceof Error && (err as NodeJS.ErrnoException).code === code;
}

/**
 * Walks a folder in the same lexicographic key order S3 lists in, so a listing can resume after a
 * key whatever the store. Keys use '/' separators, relative to the connection's folder.
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

export function createLocalStore(config: LocalConnectionConfig, allowedRoots: string[]): ObjectStore {
  const root = resolveLocalRoot(config, allowedRoots);
  const requireRoot = () => {
    if (!root) throw new SourceConfigError(`folder ${config.path} is outside LOCAL_SOURCE_ROOTS`);
    return root;
  };
  const fullPath = (key: string) => {
    const r = requireRoot();
    const p = path.resolve(r, key);
    if (!p.startsWith(r + path.sep)) throw new SourceConfigError(`key ${key} escapes the connection folder`);
    return p;
  };

  return {
    uri: (_bucket, key) => `file://${requireRoot()}/${key}`,

    async *list({ prefix, startAfter }) {
      const r = requireRoot();
      try {
        await stat(r);
      } catch (err) {
        if (isErrno(err, 'ENOENT')) throw new SourceConfigError(`folder ${r} does not exist`);
        throw err;
      }
      let page: FileMeta[] = [];
      for await (const key of walk(r, '')) {
        if (prefix && !key.startsWith(prefix)) continue;
        if (startAfter && key <= startAfter) continue;
        const s = await stat(path.join(r, key));
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
      const p = fullPath(key);
      try {
        const s = await stat(p);
        return {
          body: createReadStream(p, { highWaterMark: 1024 * 1024 }),
          etag: `${s.size}-${Math.trunc(s.mtimeMs)}`,
          size: s.size,
        };
      } catch (err) {
        if (isErrno(err, 'ENOENT')) throw new SourceFileMissingError(`file ${p} not found`);
        throw err;
      }
    },
  };
}

export const localKind = defineObjectStoreKind({
  kind: 'local',
  summary: 'a folder on the workers (under LOCAL_SOURCE_ROOTS)',
  configSchema: localConnectionConfigSchema,
  needsBucket: false,
  checkConfig: (config, ctx) => {
    if (!resolveLocalRoot(config, ctx.localSourceRoots)) {
      throw new AppError('VALIDATION_ERROR', 'config.path is outside the folders this server allows', {
        field: 'config.path',
        help: 'The operator lists readable folders in LOCAL_SOURCE_ROOTS',
      });
    }
  },
  createStore: (config, ctx) => createLocalStore(config, ctx.localSourceRoots),
});
