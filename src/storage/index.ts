import type { ConnectionRecord } from '../domain/schemas.js';
import { createLocalStore } from './local.js';
import { createS3Store } from './s3.js';
import type { ObjectStore } from './types.js';

export type { FileMeta, ObjectStore, OpenedFile } from './types.js';
export { SourceConfigError, SourceFileMissingError } from './types.js';

export interface StoreFactoryOptions {
  localSourceRoots: string[];
  env?: NodeJS.ProcessEnv;
}

/** One store per connection, built once per process: S3 clients keep their sockets between files. */
export function createStoreFactory(opts: StoreFactoryOptions) {
  const cache = new Map<string, ObjectStore>();
  return (conn: ConnectionRecord): ObjectStore => {
    const cacheKey = `${conn.id}:${JSON.stringify(conn.config)}`;
    let store = cache.get(cacheKey);
    if (!store) {
      store =
        conn.kind === 's3'
          ? createS3Store(conn.config, opts.env ?? process.env)
          : createLocalStore(conn.config, opts.localSourceRoots);
      cache.set(cacheKey, store);
    }
    return store;
  };
}
export type StoreFactory = ReturnType<typeof createStoreFactory>;
