import type { SourceContext } from './kind.js';
import { type ConnectionRecord, storeFor } from './registry.js';
import type { ObjectStore } from './types.js';

export type { SourceContext } from './kind.js';
export type { ConnectionKind, ConnectionRecord } from './registry.js';
export { connectionKinds, sourceKind, sourceKinds } from './registry.js';
export type { FileMeta, ObjectStore, OpenedFile } from './types.js';
export { SourceConfigError, SourceFileMissingError } from './types.js';

export interface StoreFactoryOptions {
  localSourceRoots: string[];
  env?: NodeJS.ProcessEnv;
}

/** One store per connection, built once per process: S3 clients keep their sockets between files. */
export function createStoreFactory(opts: StoreFactoryOptions) {
  const ctx: SourceContext = { localSourceRoots: opts.localSourceRoots, env: opts.env ?? process.env };
  const cache = new Map<string, ObjectStore>();
  return (conn: ConnectionRecord): ObjectStore => {
    const cacheKey = `${conn.id}:${JSON.stringify(conn.config)}`;
    let store = cache.get(cacheKey);
    if (!store) {
      store = storeFor(conn, ctx);
      cache.set(cacheKey, store);
    }
    return store;
  };
}
export type StoreFactory = ReturnType<typeof createStoreFactory>;
