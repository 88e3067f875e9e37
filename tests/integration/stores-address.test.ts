import net from 'node:net';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AddressPolicy } from '../../src/net/address-policy.js';
import type { SecretResolver } from '../../src/secrets/refs.js';
import { SourceConfigError, type SourceContext, sourceKind } from '../../src/sources/index.js';
import { tenantPolicySchema } from '../../src/tenancy/policy.js';

/**
 * The address policy holds for every socket a store opens, not only at the API: a refused host gets
 * no connection from a connection test, a listing or a read, and an FTP server cannot point a data
 * connection (PASV) at an address the tenant could not name itself. Each refusal is checked against
 * a listening trap that counts connections, and each has a control run that does reach the trap.
 */

interface Trap {
  host: string;
  port: number;
  connections: number;
  close(): Promise<void>;
}

/** A TCP server that counts and drops every connection. */
async function trap(host = '127.0.0.1'): Promise<Trap> {
  const t: Trap = { host, port: 0, connections: 0, close: async () => undefined };
  const server = net.createServer((socket) => {
    t.connections++;
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  t.port = (server.address() as net.AddressInfo).port;
  t.close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  return t;
}

const resolver: SecretResolver = {
  resolve: async () => 'c2VjcmV0LXZhbHVl',
  check: async () => undefined,
};
const contextFor = (address: AddressPolicy): SourceContext => ({
  tenantId: 'address-test',
  policy: tenantPolicySchema.parse({}),
  secrets: resolver,
  address,
});
const strict: AddressPolicy = { allowPrivate: false, allowList: [] };
const permissive: AddressPolicy = { allowPrivate: true, allowList: [] };

const configs: Record<string, (host: string, port: number) => Record<string, unknown>> = {
  azure_blob: (host, port) => ({
    account_url: `http://${host}:${port}/devstoreaccount1`,
    container: 'trap',
    account_key: { secret: 'k' },
  }),
  gcs: (host, port) => ({ bucket: 'trap', endpoint: `http://${host}:${port}` }),
  sftp: (host, port) => ({
    host,
    port,
    username: 'u',
    password: { secret: 'p' },
    accept_unknown_host_key: true,
  }),
  ftp: (host, port) => ({ host, port, username: 'u', password: { secret: 'p' } }),
};

let t: Trap;
beforeAll(async () => {
  t = await trap();
});
afterAll(async () => {
  await t?.close();
});

/** Everything a store does that opens a socket: its connection test, a listing and a read. */
async function exercise(kindName: string, config: Record<string, unknown>, address: AddressPolicy) {
  const kind = sourceKind(kindName);
  const parsed = kind.configSchema.parse(config);
  const ctx = contextFor(address);
  const checks = await kind.test(parsed, ctx, {});
  const store = await kind.createStore(parsed, ctx);
  const listing = (async () => {
    for await (const page of store.list({ bucket: undefined, prefix: '' })) return page;
  })().then(
    () => undefined,
    (err: unknown) => err,
  );
  const read = store.open(undefined, 'x.jsonl').then(
    (opened) => opened.body.destroy(),
    (err: unknown) => err,
  );
  return { checks, listed: await listing, read: await read };
}

describe.each(Object.keys(configs))('a %s connection to a refused address', (kindName) => {
  it.each(['127.0.0.1', 'localhost'])('opens no socket to %s, and says why', async (host) => {
    const before = t.connections;
    const { checks, listed, read } = await exercise(kindName, configs[kindName]!(host, t.port), strict);
    expect(checks).toHaveLength(1);
    expect(checks[0]).toMatchObject({ ok: false, detail: expect.stringMatching(/loopback address/) });
    for (const err of [listed, read]) {
      expect(err).toBeInstanceOf(SourceConfigError);
      expect((err as Error).message).toMatch(/loopback address/);
    }
    expect(t.connections).toBe(before);
  });

  it('does reach the same address when the policy allows it (the control)', async () => {
    const before = t.connections;
    await exercise(kindName, configs[kindName]!('127.0.0.1', t.port), permissive);
    expect(t.connections).toBeGreaterThan(before);
  });
});

/**
 * A minimal FTP control server that logs anyone in and answers PASV with `announce` (EPSV is
 * refused, so the client must use PASV); a listing gets an empty answer once the data connection
 * is up.
 */
async function fakeFtp(announce: Trap): Promise<Trap> {
  const t: Trap = { host: '127.0.0.1', port: 0, connections: 0, close: async () => undefined };
  const [p1, p2] = [Math.floor(announce.port / 256), announce.port % 256];
  const open = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    t.connections++;
    open.add(socket);
    socket.on('close', () => open.delete(socket));
    socket.on('error', () => socket.destroy());
    socket.write('220 fake\r\n');
    createInterface({ input: socket }).on('line', (line) => {
      const [cmd] = line.split(' ');
      const answer: Record<string, string> = {
        USER: '331 password please',
        PASS: '230 logged in',
        FEAT: '211 no features',
        TYPE: '200 ok',
        STRU: '200 ok',
        OPTS: '200 ok',
        PWD: '257 "/"',
        EPSV: '502 not here',
        PASV: `227 Entering Passive Mode (${announce.host.replaceAll('.', ',')},${p1},${p2})`,
        LIST: '150 here it comes\r\n226 done',
        QUIT: '221 bye',
      };
      socket.write(`${answer[cmd!.toUpperCase()] ?? '502 no'}\r\n`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.port = (server.address() as net.AddressInfo).port;
  // A store keeps an idle control connection for a while: closing the server ends it.
  t.close = () =>
    new Promise<void>((resolve) => {
      for (const socket of open) socket.destroy();
      server.close(() => resolve());
    });
  return t;
}

describe('an FTP server announcing a PASV address', () => {
  let data: Trap;
  let control: Trap;
  beforeAll(async () => {
    // Another loopback address: the control connection's address is allowed, this one is not.
    data = await trap('127.0.0.2');
    control = await fakeFtp(data);
  });
  afterAll(async () => {
    await control?.close();
    await data?.close();
  });
  const config = () => ({
    host: '127.0.0.1',
    port: control.port,
    username: 'u',
    password: { secret: 'p' },
    passive_host: 'announced',
  });

  it('gets no data connection to an address the policy refuses', async () => {
    const onlyControl: AddressPolicy = { allowPrivate: true, allowList: ['127.0.0.1/32'] };
    const { checks } = await exercise('ftp', config(), onlyControl);
    expect(checks.map((c) => [c.name, c.ok])).toEqual([
      ['address', true],
      ['credentials', true],
      ['login', true],
      ['folder', false],
    ]);
    expect(checks.at(-1)!.detail).toMatch(
      /data connection was refused: 127\.0\.0\.2 is not on the operator's endpoint allow-list/,
    );
    expect(data.connections).toBe(0);
  });

  it('connects to the announced address when the policy allows it (the control)', async () => {
    const { checks } = await exercise('ftp', config(), permissive);
    expect(checks.find((c) => c.name === 'login')).toMatchObject({ ok: true });
    expect(data.connections).toBeGreaterThan(0);
  });
});
