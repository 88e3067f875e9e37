import type { z } from 'zod';
import type { AddressPolicy } from '../net/address-policy.js';
import type { SecretResolver } from '../secrets/refs.js';
import type { TenantPolicy } from '../tenancy/policy.js';
import type { ObjectStore } from './types.js';

/** What a store needs from the service: the tenant it serves, that tenant's rules, and the network's. */
export interface SourceContext {
  tenantId: string;
  /** Folders, env prefixes and default credentials the operator allows this tenant. */
  policy: TenantPolicy;
  /** The tenant's credential references, resolved under its policy. */
  secrets: SecretResolver;
  /** Every host the store connects to goes through this (src/net/address-policy.ts). */
  address: AddressPolicy;
}

/** One check of a connection test: what was checked, whether it passed, and what was found. */
export interface ConnectionCheck {
  name: string;
  ok: boolean;
  detail: string;
}

/** Where a connection test looks, when the request names it (an object store's bucket and prefix). */
export interface TestTarget {
  bucket?: string;
  prefix?: string;
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
  /** The full URI of a key (a file's `file_path` and its rows' `_source_file`); no I/O. */
  uri: (config: z.output<S>, bucket: string | undefined, key: string) => string;
  /**
   * Problems the schema cannot see, at creation (a folder outside the tenant's roots, a credential
   * the tenant may not use, a refused endpoint); throws an AppError. Also the check of a stored
   * connection (`GET /connections` flags what fails it, without `network`: no name resolution).
   */
  checkConfig: (config: z.output<S>, ctx: SourceContext, opts: { network: boolean }) => Promise<void>;
  createStore: (config: z.output<S>, ctx: SourceContext) => Promise<ObjectStore>;
  /** `POST /connections/{id}/test`: what a working connection needs, each step reported. */
  test: (config: z.output<S>, ctx: SourceContext, target: TestTarget) => Promise<ConnectionCheck[]>;
}

/** Keeps each entry's config type tied to its schema. */
export function defineObjectStoreKind<K extends string, S extends z.ZodType>(
  kind: ObjectStoreKind<K, S>,
): ObjectStoreKind<K, S> {
  return kind;
}

/** A check that takes longer than this fails as timed out: a test answers within seconds, never hangs. */
export const checkTimeoutMs = 5_000;

/**
 * Runs checks in order, stopping at the first failure (later ones depend on it), and reports each.
 * A failing check is the answer, not an error: whatever a step throws becomes its `detail`.
 */
export async function runChecks(
  steps: { name: string; run: () => Promise<string> }[],
  timeoutMs = checkTimeoutMs,
): Promise<ConnectionCheck[]> {
  const out: ConnectionCheck[] = [];
  for (const step of steps) {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs / 1000} s`)), timeoutMs);
    });
    try {
      out.push({ name: step.name, ok: true, detail: await Promise.race([step.run(), deadline]) });
    } catch (err) {
      out.push({ name: step.name, ok: false, detail: err instanceof Error ? err.message : String(err) });
      break;
    } finally {
      clearTimeout(timer);
    }
  }
  return out;
}
