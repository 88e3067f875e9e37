import { randomBytes } from 'node:crypto';

const alphabet = '0123456789abcdefghjkmnpqrstvwxyz';

/** Prefixed random ids (`run_8f3k…`): readable in logs and in the Temporal UI, unguessable across tenants. */
export function newId(prefix: string): string {
  const bytes = randomBytes(16);
  let out = '';
  for (const b of bytes) out += alphabet[b % 32];
  return `${prefix}_${out}`;
}
