import { createHmac, timingSafeEqual } from 'node:crypto';

/** The header every delivery carries: Stripe's scheme, `t=<unix seconds>,v1=<hex HMAC-SHA256>`. */
export const signatureHeader = 'Autoloader-Signature';

/** HMAC-SHA256 of `<t>.<body>` with the webhook's secret: the timestamp is signed too, so a replay is datable. */
export function sign(secret: string, timestamp: number, body: string): string {
  const mac = createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
  return `t=${timestamp},v1=${mac}`;
}

/** A receiver's check (the docs show it; the tests use it): the header's MAC matches, in constant time. */
export function verify(secret: string, header: string, body: string): boolean {
  const parts = Object.fromEntries(header.split(',').map((p) => p.split('=', 2) as [string, string]));
  const t = Number(parts.t);
  if (!Number.isInteger(t) || !parts.v1) return false;
  const expected = Buffer.from(sign(secret, t, body).split('v1=')[1]!, 'hex');
  const given = Buffer.from(parts.v1, 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}
