import type { z } from 'zod';
import type { ObjectStore } from './types.js';

/** What a store needs from the service to be built or checked. */
export interface SourceContext {
  /** Folders `local` connections may read. */
  localSourceRoots: string[];
  /** Where env-var credential references are read. */
  env: NodeJS.ProcessEnv;
}

/**
 * One kind of connection whose files are loaded: its configuration schema, how to build its store,
 * and what its ingestions need. A new kind is one entry of this shape, in its own file, listed in
 * registry.ts.
 */
export interface ObjectStoreKind<K extends string = string, S extends z.ZodType = z.ZodType> {
  kind: K;
  /** One line for the API reference. */
  summary: string;
  configSchema: S;
  /** The store holds named buckets (containers): its ingestions must name one in `source.bucket`. */
  needsBucket: boolean;
  /** Problems the schema cannot see (a folder outside the allowed roots); throws an AppError. */
  checkConfig?: (config: z.output<S>, ctx: SourceContext) => void;
  createStore: (config: z.output<S>, ctx: SourceContext) => ObjectStore;
}

/** Keeps each entry's config type tied to its schema. */
export function defineObjectStoreKind<K extends string, S extends z.ZodType>(
  kind: ObjectStoreKind<K, S>,
): ObjectStoreKind<K, S> {
  return kind;
}
