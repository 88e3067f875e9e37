/**
 * The one id format (`run_8f3k…`): a prefix and 16 characters of Crockford-style base32 from 16
 * random bytes. Readable in logs and in the Temporal UI, unguessable across tenants. Pure, so that
 * workflows (which draw their randomness from Temporal's deterministic uuid4) format ids the same
 * way the API and activities do (which draw theirs from node:crypto).
 */
const alphabet = '0123456789abcdefghjkmnpqrstvwxyz';

export function formatId(prefix: string, random: Uint8Array): string {
  let out = '';
  for (const b of random.subarray(0, 16)) out += alphabet[b % 32];
  return `${prefix}_${out}`;
}

/** The bytes of a UUID string (as workflows get them from uuid4()). */
export function uuidBytes(uuid: string): Uint8Array {
  const hex = uuid.replaceAll('-', '');
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = Number.parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return bytes;
}
