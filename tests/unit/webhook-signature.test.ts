import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { sign, verify } from '../../src/webhooks/signature.js';

describe('webhook signature (Stripe’s scheme)', () => {
  const body = '{"id":"evt_1","type":"run.succeeded"}';

  it('is t=<seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">', () => {
    const mac = createHmac('sha256', 'whsec').update(`1700000000.${body}`).digest('hex');
    expect(sign('whsec', 1_700_000_000, body)).toBe(`t=1700000000,v1=${mac}`);
  });

  it('verifies its own signature, and nothing changed in the body, the time or the secret', () => {
    const header = sign('whsec', 1_700_000_000, body);
    expect(verify('whsec', header, body)).toBe(true);
    expect(verify('whsec', header, `${body} `)).toBe(false);
    expect(verify('other', header, body)).toBe(false);
    expect(verify('whsec', header.replace('t=1700000000', 't=1700000001'), body)).toBe(false);
    expect(verify('whsec', 'v1=abc', body)).toBe(false);
    expect(verify('whsec', 't=1700000000,v1=zz', body)).toBe(false);
  });
});
