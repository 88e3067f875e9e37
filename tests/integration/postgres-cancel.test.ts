import net from 'node:net';
import postgres from 'postgres';
import { afterEach, describe, expect, inject, it } from 'vitest';

/**
 * A statement cancelled while Postgres cannot be reached for the cancel request (it is restarting,
 * the network is down). postgres.js sends the cancel over a new connection, and the failure of that
 * connection used to reject a promise the library dropped: the worker ended with an unhandled
 * "connect ECONNREFUSED" (the fault loop's restart-postgres fault, during a small file's cancelled
 * statement). patches/postgres+3.4.9.patch hands the promise back, handled.
 */

/** A TCP relay to Postgres that can stop accepting connections while keeping the open ones. */
async function relay(target: URL) {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => sockets.delete(s));
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    /** New connections are refused from now on (the port is closed); open ones carry on. */
    refuseNew: () => {
      server.close();
    },
    cutAll: () => {
      for (const s of sockets) s.destroy();
    },
  };
}

const url = new URL(inject('databaseUrl'));
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('cancelling a statement when the cancel request cannot reach Postgres', () => {
  it('answers the failed cancel as a rejected promise, not an unhandled rejection', async () => {
    const proxy = await relay(url);
    const viaProxy = new URL(url);
    viaProxy.port = String(proxy.port);
    const sql = postgres(viaProxy.toString(), { max: 1, onnotice: () => undefined });
    cleanups.push(() => sql.end({ timeout: 0 }));
    const direct = postgres(url.toString(), { max: 1, onnotice: () => undefined });
    cleanups.push(() => direct.end({ timeout: 5 }));

    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    cleanups.push(() => {
      process.off('unhandledRejection', onUnhandled);
    });

    const tag = `cancel-test-${process.pid}-${Date.now()}`;
    /** Sessions running the statement, seen from another connection. */
    const running = async () => {
      const [row] = await direct<{ n: number }[]>`
        select count(*)::int as n from pg_stat_activity
        where query like ${`%${tag}%`} and state = 'active' and pid <> pg_backend_pid()`;
      return row!.n;
    };
    const query = sql.unsafe(`select pg_sleep(60) /* ${tag} */`);
    const settled = query.then(
      () => 'completed',
      (err: unknown) => err,
    );
    // The statement is running on the server (seen from another connection), not just queued.
    while ((await running()) === 0);

    proxy.refuseNew();
    const cancelled = (query as unknown as { cancel(): Promise<void> | null }).cancel();
    // Handed back, so a caller can see it failed; before the patch it was null and its rejection
    // reached no one.
    expect(cancelled).toBeInstanceOf(Promise);
    await expect(cancelled).rejects.toMatchObject({ code: 'ECONNREFUSED' });

    // The cancel never reached the server: the statement still runs until its connection goes.
    expect(await running()).toBe(1);
    proxy.cutAll();
    expect(await settled).toMatchObject({ code: 'CONNECTION_CLOSED' });
    await direct`
      select pg_terminate_backend(pid) from pg_stat_activity
      where query like ${`%${tag}%`} and pid <> pg_backend_pid()`;
    // A turn of the event loop for a rejection nobody handled to be reported.
    await new Promise((resolve) => setImmediate(resolve));
    expect(unhandled).toEqual([]);
  });
});
