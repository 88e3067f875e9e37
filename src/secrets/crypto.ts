import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/**
 * Sealing secrets at rest: AES-256-GCM with a random 96-bit nonce per value, and the tenant and
 * secret name as additional data, so a sealed value copied to another row (another tenant, another
 * name) fails to open instead of handing over its content.
 */
const version = 1;
const nonceBytes = 12;
const tagBytes = 16;

export class SecretKeyError extends Error {
  override name = 'SecretKeyError';
}

/** AUTOLOADER_SECRET_KEY: 32 bytes, as 64 hex characters or base64. */
export function parseSecretKey(text: string): Buffer {
  const trimmed = text.trim();
  const key = /^[0-9a-fA-F]{64}$/.test(trimmed)
    ? Buffer.from(trimmed, 'hex')
    : Buffer.from(trimmed, 'base64');
  if (key.length !== 32) {
    throw new SecretKeyError(
      'AUTOLOADER_SECRET_KEY must be 32 bytes, as 64 hex characters or base64 (e.g. `openssl rand -hex 32`)',
    );
  }
  return key;
}

export function newSecretKey(): string {
  return randomBytes(32).toString('hex');
}

const additionalData = (tenantId: string, name: string) => Buffer.from(`${tenantId}\u0000${name}`, 'utf8');

export function seal(key: Buffer, tenantId: string, name: string, value: string): Buffer {
  const nonce = randomBytes(nonceBytes);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(additionalData(tenantId, name));
  const body = Buffer.concat([cipher.update(value, 'utf8'), cipher.final()]);
  return Buffer.concat([Buffer.from([version]), nonce, cipher.getAuthTag(), body]);
}

export function open(key: Buffer, tenantId: string, name: string, sealed: Buffer): string {
  if (sealed.length < 1 + nonceBytes + tagBytes || sealed[0] !== version) {
    throw new SecretKeyError('sealed secret has an unknown format');
  }
  const nonce = sealed.subarray(1, 1 + nonceBytes);
  const tag = sealed.subarray(1 + nonceBytes, 1 + nonceBytes + tagBytes);
  const decipher = createDecipheriv('aes-256-gcm', key, nonce);
  decipher.setAAD(additionalData(tenantId, name));
  decipher.setAuthTag(tag);
  try {
    return Buffer.concat([
      decipher.update(sealed.subarray(1 + nonceBytes + tagBytes)),
      decipher.final(),
    ]).toString('utf8');
  } catch {
    // GCM's only failure: the key, the tenant/name binding or the bytes are not what sealed it.
    throw new SecretKeyError(
      'secret cannot be opened with this AUTOLOADER_SECRET_KEY (wrong key, or tampered)',
    );
  }
}
