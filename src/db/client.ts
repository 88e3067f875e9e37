import net from 'node:net';
import { drizzle } from 'drizzle-orm/postgres-js';
import postgres from 'postgres';
import * as schema from './schema/index.js';

export type Sql = postgres.Sql;
export type Db = ReturnType<typeof createDb>['db'];

export interface DbOptions {
  /** Connections in the raw-SQL pool (COPY streams, set-based state changes). */
  max?: number;
  applicationName?: string;
  /**
   * How long a statement may wait for a lock (a user's LOCK TABLE, a long transaction) before it
   * fails, rather than hang a load for hours. Default 60 s.
   */
  lockTimeoutMs?: number;
}

/**
 * Session settings that keep a dead or stuck client from holding anything for long: the server
 * checks the client is still there during long queries and drops a transaction left idle (a killed
 * worker's session goes within seconds, not minutes); keepalives notice a vanished peer.
 */
function sessionSettings(opts: DbOptions): Record<string, string> {
  return {
    lock_timeout: String(opts.lockTimeoutMs ?? 60_000),
    idle_in_transaction_session_timeout: '300000',
    client_connection_check_interval: '5000',
    tcp_keepalives_idle: '10',
    tcp_keepalives_interval: '5',
    tcp_keepalives_count: '3',
  };
}

/**
 * Two pools: drizzle (typed CRUD in the API) and raw postgres.js (COPY, set-based queries). drizzle
 * replaces the driver's date and date-array (de)serialisers on the client it is given, which would
 * silently change what raw queries send and receive; keeping its client separate keeps both honest.
 */
export function createDb(url: string, opts: DbOptions = {}) {
  const common = {
    socket: connectNoDelay,
    // Notices (e.g. "relation already exists, skipping") are expected on idempotent DDL.
    onnotice: () => undefined,
    connection: {
      application_name: opts.applicationName ?? 'autoloader',
      TimeZone: 'UTC',
      ...sessionSettings(opts),
    },
    keep_alive: 10,
  };
  const sql = postgres(url, { ...common, max: opts.max ?? 10 });
  const drizzleClient = postgres(url, { ...common, max: 4 });
  const db = drizzle(drizzleClient, { schema, casing: 'snake_case' });
  return {
    sql,
    db,
    close: async () => {
      await Promise.all([sql.end({ timeout: 5 }), drizzleClient.end({ timeout: 5 })]);
    },
  };
}

/**
 * postgres.js leaves Nagle's algorithm on. COPY sends its data and its end marker as separate small
 * writes that the server does not answer, so each file waited out a 40 ms delayed ACK: on small
 * files that was most of the load time. The options carry the parsed host/port lists.
 */
function connectNoDelay(options: { host: string[]; port: number[]; path?: string }): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = options.path
      ? net.connect({ path: options.path })
      : net.connect({ host: options.host[0], port: options.port[0] ?? 5432 });
    socket.setNoDelay(true);
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}
