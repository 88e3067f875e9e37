import type { Sql } from '../db/client.js';
import type { AddressPolicy } from '../net/address-policy.js';
import { secretResolver } from '../secrets/store.js';
import { loadTenantPolicy } from '../tenancy/policy.js';
import type { SourceContext } from './kind.js';

export interface SourceContextOptions {
  sql: Sql;
  /** AUTOLOADER_SECRET_KEY, parsed; undefined when unset (stored secrets then cannot be opened). */
  secretKey: Buffer | undefined;
  /** Where env credential references are read (the worker's environment). */
  env: NodeJS.ProcessEnv;
  address: AddressPolicy;
}

/** A tenant's SourceContext, read fresh: its policy may change at any time. */
export type SourceContexts = (tenantId: string) => Promise<SourceContext>;

export function sourceContexts(opts: SourceContextOptions): SourceContexts {
  return async (tenantId) => {
    const policy = await loadTenantPolicy(opts.sql, tenantId);
    return {
      tenantId,
      policy,
      secrets: secretResolver({ sql: opts.sql, key: opts.secretKey, env: opts.env, tenantId, policy }),
      address: opts.address,
    };
  };
}
