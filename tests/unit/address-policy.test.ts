import http from 'node:http';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AddressPolicy, guardedAgents, guardedConnect, refusal } from '../../src/net/address-policy.js';

const open: AddressPolicy = { allowPrivate: true, allowList: [] };
const strict: AddressPolicy = { allowPrivate: false, allowList: [] };

describe('which addresses a tenant may name', () => {
  it.each([
    ['169.254.169.254', 'metadata'],
    ['fd00:ec2::254', 'metadata'],
    ['::ffff:169.254.169.254', 'metadata'],
    ['100.100.100.200', 'metadata'],
    ['169.254.1.1', 'linkLocal'],
    ['fe80::1', 'linkLocal'],
    ['0.0.0.0', 'unspecified'],
    ['224.0.0.1', 'multicast'],
  ])('always refuses %s (%s), even when private addresses are allowed', (address, why) => {
    expect(refusal('h', address, open)).toMatch(why === 'metadata' ? /metadata/ : new RegExp(why));
  });

  it.each(['127.0.0.1', '::1', '10.0.0.5', '192.168.1.1', '172.16.0.1', 'fc00::1', '::ffff:10.0.0.1'])(
    'refuses the private address %s unless the operator allows private addresses',
    (address) => {
      expect(refusal('h', address, strict)).toMatch(/AUTOLOADER_ALLOW_PRIVATE_ENDPOINTS/);
      expect(refusal('h', address, open)).toBeUndefined();
    },
  );

  it('allows public addresses, and with an allow-list only what it names', () => {
    expect(refusal('s3.amazonaws.com', '52.216.1.1', strict)).toBeUndefined();
    const listed: AddressPolicy = {
      allowPrivate: false,
      allowList: ['*.amazonaws.com', '8.8.8.0/24', 'minio.internal'],
    };
    expect(refusal('s3.us-east-1.amazonaws.com', '52.216.1.1', listed)).toBeUndefined();
    expect(refusal('evil.example', '52.216.1.1', listed)).toMatch(/allow-list/);
    expect(refusal('anything', '8.8.8.8', listed)).toBeUndefined();
    expect(refusal('minio.internal', '1.1.1.1', listed)).toBeUndefined();
    // Documentation and benchmark ranges are not public either.
    expect(refusal('doc', '203.0.113.7', strict)).toMatch(/reserved/);
    // The allow-list does not reopen metadata.
    expect(refusal('metadata.amazonaws.com', '169.254.169.254', listed)).toMatch(/metadata/);
  });
});

describe('connections through the policy', () => {
  let server: net.Server;
  let port: number;
  let accepted = 0;
  beforeAll(async () => {
    server = net.createServer((s) => {
      accepted++;
      s.end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as net.AddressInfo).port;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  const attempt = (policy: AddressPolicy, host: string) =>
    new Promise<string>((resolve) => {
      const socket = guardedConnect(policy, host, port);
      socket.once('connect', () => {
        socket.destroy();
        resolve('connected');
      });
      socket.once('error', (err) => resolve(err.message));
    });

  it('never opens a socket to a refused address: the name is checked as it resolves', async () => {
    const before = accepted;
    expect(await attempt(strict, 'localhost')).toMatch(/loopback/);
    expect(await attempt(strict, '127.0.0.1')).toMatch(/loopback/);
    expect(accepted).toBe(before);
    expect(await attempt(open, '127.0.0.1')).toBe('connected');
  });

  it('a refused literal does not crash a client that listens for errors only after an await (as postgres.js does)', async () => {
    const uncaught: unknown[] = [];
    const onUncaught = (err: unknown) => uncaught.push(err);
    process.on('uncaughtException', onUncaught);
    try {
      const socket = guardedConnect(strict, '127.0.0.1', port);
      // Two macrotask turns before anyone listens: the refusal must wait for the listener.
      await new Promise((r) => setTimeout(r, 20));
      const message = await new Promise<string>((resolve) =>
        socket.once('error', (err) => resolve(err.message)),
      );
      expect(message).toMatch(/loopback/);
      expect(uncaught).toEqual([]);
    } finally {
      process.off('uncaughtException', onUncaught);
    }
  });

  it('HTTP agents (the store SDKs’) refuse names and literals alike before connecting', async () => {
    const before = accepted;
    const get = (policy: AddressPolicy, host: string) =>
      new Promise<string>((resolve) => {
        const req = http.get({ host, port, agent: guardedAgents(policy).http, path: '/' }, (res) => {
          res.resume();
          resolve('answered');
        });
        req.once('error', (err) => resolve(err.message));
      });
    expect(await get(strict, '127.0.0.1')).toMatch(/loopback/);
    expect(await get(strict, 'localhost')).toMatch(/loopback/);
    expect(await get(open, '169.254.169.254')).toMatch(/metadata/);
    expect(accepted).toBe(before);
  });
});
