import { SecretRefError } from '../secrets/refs.js';
import type { SourceContexts } from './context.js';
import { type ConnectionRecord, sourceKind } from './registry.js';
import { type ObjectStore, SourceConfigError } from './types.js';

export { type SourceContextOptions, type SourceContexts, sourceContexts } from './context.js';
export type { ConnectionCheck, SourceContext, TestTarget } from './kind.js';
export { isDatabaseKind } from './postgres.js';
export type { ConnectionKind, ConnectionRecord } from './registry.js';
export { connectionKinds, sourceKind, sourceKinds, uriOf } from './registry.js';
export type { FileMeta, ObjectStore, OpenedFile } from './types.js';
export { SourceConfigError, SourceFileError, SourceFileMissingError, sourceConfigAdvice } from './types.js';

/** How long a built store (its client, its resolved credentials) is reused before it is built again. */
const storeTtlMs = 60_000;

/**
 * Stores for connections, built once and reused for a minute: S3 clients keep their sockets between
 * files, and a rotated secret or a changed tenant policy takes effect within that minute.
 */
export function createStoreFactory(contexts: SourceContexts) {
  const cache = new Map<string, { store: Promise<ObjectStore>; until: number }>();
  return async (conn: ConnectionRecord): Promise<ObjectStore> => {
    const cacheKey = `${conn.tenantId}:${conn.id}:${JSON.stringify(conn.config)}`;
    const hit = cache.get(cacheKey);
    if (hit && hit.until > Date.now()) return hit.store;
    const store = (async () => {
      const kind = sourceKind(conn.kind);
      const ctx = await contexts(conn.tenantId);
      try {
        return await kind.createStore(kind.configSchema.parse(conn.config), ctx);
      } catch (err) {
        // A credential the tenant may not use (or that names nothing) is the connection's fault:
        // retrying will not help, and the run says why.
        if (err instanceof SecretRefError) throw new SourceConfigError(`${err.message} [${err.code}]`);
        throw err;
      }
    })();
    cache.set(cacheKey, { store, until: Date.now() + storeTtlMs });
    store.catch(() => cache.delete(cacheKey));
    return store;
  };
}
export type StoreFactory = ReturnType<typeof createStoreFactory>;
