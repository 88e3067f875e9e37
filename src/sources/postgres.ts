import { createHash } from 'node:crypto';
import net from 'node:net';
import postgres from 'postgres';
import { z } from 'zod';
import { AppError } from '../domain/errors.js';
import { isAllowedDestinationSchema } from '../lib/identifiers.js';
import { AddressNotAllowedError, guardedConnect, refusal } from '../net/address-policy.js';
import { secretRefSchema } from '../secrets/refs.js';
import { schemaAllowed } from '../tenancy/policy.js';
import { defineObjectStoreKind, runChecks, type SourceContext } from './kind.js';
import { bareHost, checkHostAtApi, describeAllowedHost, hostSchema } from './remote.js';
import { SourceConfigError } from './types.js';

/**
 * A remote PostgreSQL database (seed 004): its tables are discovered into the connection's catalog
 * (autoloader.connection_tables) by a schema refresh. It holds tables, not files, so it is never an
 * ingestion's source.
 */

export const sslModes = ['disable', 'require', 'verify-full'] as const;

/** A remote schema's name as Postgres stores it (any case, at most 63 bytes). */
const remoteName = z
  .string()
  .min(1)
  .refine((n) => Buffer.byteLength(n, 'utf8') <= 63, 'at most 63 bytes (a Postgres identifier)');

export const postgresConnectionConfigSchema = z
  .object({
    host: hostSchema,
    port: z.number().int().min(1).max(65535).default(5432),
    database: remoteName,
    user: remoteName,
    password: secretRefSchema.describe('The user’s password, by reference'),
    ssl_mode: z
      .enum(sslModes)
      .default('require')
      .describe(
        'disable: no TLS; require: TLS without checking the certificate; verify-full: TLS with the certificate checked against the host name',
      ),
    schemas: z
      .array(remoteName)
      .min(1)
      .max(200)
      .refine((s) => new Set(s).size === s.length, 'schema names must be unique')
      .optional()
      .describe('The remote schemas whose tables are listed; default: every non-system schema'),
    cache_schema: z
      .string()
      .refine(
        isAllowedDestinationSchema,
        'must be a lower-case SQL identifier ([a-z_][a-z0-9_]*), not a system schema',
      )
      .describe('The schema of the destination database that holds the cached tables'),
  })
  .strict()
  .describe('A PostgreSQL database whose tables are discovered and refreshed with POST /api/v1/refresh');
export type PostgresConnectionConfig = z.infer<typeof postgresConnectionConfigSchema>;

/** A remote table's column as the connection's catalog keeps it. */
export interface CatalogColumn {
  name: string;
  type: string;
  nullable: boolean;
  /** 1-based, among the table's columns as they are now (dropped ones leave no gap). */
  position: number;
}

/** A remote table as a schema refresh finds it. */
export interface DiscoveredTable {
  schemaName: string;
  tableName: string;
  columns: CatalogColumn[];
  fingerprint: string;
}

/** The columns' names, types and nullability in order: what a schema refresh compares. */
export function columnFingerprint(columns: CatalogColumn[]): string {
  const shape = columns.map((c) => [c.name, c.type, c.nullable]);
  return createHash('sha256').update(JSON.stringify(shape)).digest('hex');
}

/** TCP connects, logins and catalog reads each end within these: a dead host is an error, never a hang. */
export const remoteTimeouts = { connectSeconds: 10, statementMs: 30_000 };

function sslOption(mode: PostgresConnectionConfig['ssl_mode'], host: string) {
  if (mode === 'disable') return false;
  if (mode === 'require') return 'require' as const;
  // The socket is ours, so the name checked against the certificate is given explicitly.
  return { rejectUnauthorized: true, host, servername: net.isIP(host) === 0 ? host : undefined };
}

/** A client for the remote database: one connection, every socket through the address policy. */
export async function openRemote(
  config: PostgresConnectionConfig,
  ctx: SourceContext,
  connectSeconds = remoteTimeouts.connectSeconds,
): Promise<postgres.Sql> {
  const password = await ctx.secrets.resolve(config.password, 'config.password');
  const host = bareHost(config.host);
  // A refused IP literal fails its socket at once, before postgres.js listens to it: refused here.
  const why = net.isIP(host) !== 0 ? refusal(host, host, ctx.address) : undefined;
  if (why) throw new AddressNotAllowedError(why);
  const options = {
    host,
    port: config.port,
    database: config.database,
    username: config.user,
    password,
    ssl: sslOption(config.ssl_mode, host),
    max: 1,
    connect_timeout: connectSeconds,
    idle_timeout: 10,
    onnotice: () => undefined,
    connection: { application_name: 'autoloader', statement_timeout: remoteTimeouts.statementMs },
    // postgres.js takes a socket factory (not in its types): the policy is checked on the address
    // actually connected to, and a refused one never gets a socket. The socket is handed over still
    // connecting (postgres.js buffers its first message), so connect_timeout bounds the TCP
    // handshake and the login together; a factory that rejected would leave the query waiting.
    socket: () => guardedConnect(ctx.address, host, config.port),
  };
  return postgres(options as postgres.Options<Record<string, never>>);
}

/** Closes a remote client, giving a query still running 2 s to finish. */
export async function closeRemote(sql: postgres.Sql): Promise<void> {
  await sql.end({ timeout: 2 });
}

/** What went wrong reaching the remote, for a check's detail or a refresh's error. */
export function describeRemoteError(config: PostgresConnectionConfig, err: unknown): string {
  const where = `${config.host}:${config.port}/${config.database}`;
  if (err instanceof postgres.PostgresError) return `${where}: ${err.message} (SQLSTATE ${err.code})`;
  const code = (err as { code?: string }).code;
  if (code === 'CONNECT_TIMEOUT') return `${where}: no answer before the connect timeout`;
  return `${where}: ${err instanceof Error ? err.message : String(err)}`;
}

/**
 * The tables (and views) the user may read, with their columns, restricted to the configured
 * schemas (default: every non-system one). Partitions are listed through their parent.
 */
export async function listRemoteTables(
  sql: postgres.Sql,
  schemas: string[] | undefined,
): Promise<DiscoveredTable[]> {
  // The schema list goes as one JSON text: postgres.js serialises an array parameter only once it
  // has fetched the server's array types, which a fresh connection's first query has not (and a
  // string bound as jsonb would be encoded again, as a JSON string).
  const rows = await sql<
    { schemaName: string; tableName: string; name: string | null; type: string | null; notNull: boolean }[]
  >`
    select n.nspname as "schemaName", c.relname as "tableName", a.attname as name,
           format_type(a.atttypid, a.atttypmod) as type, coalesce(a.attnotnull, false) as "notNull"
    from pg_class c
    join pg_namespace n on n.oid = c.relnamespace
    left join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
    where c.relkind in ('r', 'p', 'v', 'm', 'f') and not c.relispartition
      and n.nspname <> 'information_schema' and n.nspname !~ '^pg_'
      ${schemas ? sql`and n.nspname in (select jsonb_array_elements_text(${JSON.stringify(schemas)}::text::jsonb))` : sql``}
      and has_schema_privilege(n.oid, 'USAGE') and has_table_privilege(c.oid, 'SELECT')
    order by n.nspname, c.relname, a.attnum`;
  const tables = new Map<string, DiscoveredTable>();
  for (const r of rows) {
    const key = JSON.stringify([r.schemaName, r.tableName]);
    let t = tables.get(key);
    if (!t) {
      t = { schemaName: r.schemaName, tableName: r.tableName, columns: [], fingerprint: '' };
      tables.set(key, t);
    }
    if (r.name !== null && r.type !== null)
      t.columns.push({ name: r.name, type: r.type, nullable: !r.notNull, position: t.columns.length + 1 });
  }
  for (const t of tables.values()) t.fingerprint = columnFingerprint(t.columns);
  return [...tables.values()];
}

/**
 * Rejects when `work` has not settled within `ms`. postgres.js bounds each connection attempt, but a
 * server that accepts and then closes during the login (a proxy, a port of another service) makes it
 * reconnect for ever; this bounds the whole wait.
 */
async function within<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms / 1000} s`)), ms);
  });
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

export interface RemoteSession {
  sql: postgres.Sql;
  user: string;
  version: string;
  tls: boolean;
}

/** Opens a client and logs in, within `connectSeconds`; closes it again if the login fails. */
export async function connectRemote(
  config: PostgresConnectionConfig,
  ctx: SourceContext,
  connectSeconds = remoteTimeouts.connectSeconds,
): Promise<RemoteSession> {
  const sql = await openRemote(config, ctx, connectSeconds).catch((err: unknown) => {
    if (err instanceof AddressNotAllowedError) throw new Error(describeRemoteError(config, err));
    throw err;
  });
  try {
    const [who] = await within(
      sql<{ user: string; version: string; ssl: boolean | null }[]>`
        select current_user as user, current_setting('server_version') as version,
               (select ssl from pg_stat_ssl where pid = pg_backend_pid()) as ssl`.execute(),
      connectSeconds * 1000,
      'login',
    );
    return { sql, user: who!.user, version: who!.version, tls: who!.ssl === true };
  } catch (err) {
    // At once: a client stuck reconnecting has nothing to finish.
    await sql.end({ timeout: 0 });
    throw new Error(describeRemoteError(config, err));
  }
}

/** The remote's tables, within the statement timeout (a wait for the server included). */
export async function listRemoteTablesWithin(
  config: PostgresConnectionConfig,
  sql: postgres.Sql,
): Promise<DiscoveredTable[]> {
  try {
    return await within(listRemoteTables(sql, config.schemas), remoteTimeouts.statementMs + 5_000, 'listing');
  } catch (err) {
    throw new Error(describeRemoteError(config, err));
  }
}

/** Connects, lists, closes: a schema refresh's read of the remote. */
export async function discoverRemoteTables(
  config: PostgresConnectionConfig,
  ctx: SourceContext,
): Promise<DiscoveredTable[]> {
  const { sql } = await connectRemote(config, ctx);
  try {
    return await listRemoteTablesWithin(config, sql);
  } finally {
    await closeRemote(sql);
  }
}

export const postgresKind = defineObjectStoreKind({
  kind: 'postgres',
  summary:
    'A PostgreSQL database (host, port, database, user; password by reference; ssl_mode; schemas; cache_schema) whose tables POST /api/v1/refresh discovers',
  configSchema: postgresConnectionConfigSchema,
  needsBucket: false,
  uri: (config, _bucket, key) => `postgres://${config.host}:${config.port}/${config.database}/${key}`,
  async checkConfig(config, ctx, opts) {
    await ctx.secrets.check(config.password, 'config.password');
    if (!schemaAllowed(ctx.policy, config.cache_schema)) {
      // The same answer as a destination the tenant may not name: what exists does not leak.
      throw new AppError('DESTINATION_UNAVAILABLE', 'This cache schema is not available to this tenant', {
        field: 'config.cache_schema',
        help: 'Choose a schema under the tenant’s schema prefix',
      });
    }
    if (opts.network) await checkHostAtApi(bareHost(config.host), ctx.address, 'config.host');
  },
  createStore: () => {
    throw new SourceConfigError(
      'a postgres connection holds tables, not files: its tables are refreshed with POST /api/v1/refresh, not loaded by an ingestion',
    );
  },
  test: (config, ctx) => {
    let remote: postgres.Sql | undefined;
    const checks = runChecks([
      { name: 'address', run: () => describeAllowedHost(bareHost(config.host), ctx.address) },
      {
        name: 'credentials',
        run: async () => {
          await ctx.secrets.resolve(config.password, 'config.password');
          return `password of user "${config.user}", from the connection’s reference`;
        },
      },
      {
        name: 'login',
        run: async () => {
          // Inside the check's own deadline (runChecks): a dead host fails the check, not the test.
          const session = await connectRemote(config, ctx, 4);
          remote = session.sql;
          return `logged in to database "${config.database}" as "${session.user}" (PostgreSQL ${session.version}, ${session.tls ? 'TLS' : 'no TLS'})`;
        },
      },
      {
        name: 'tables',
        run: async () => {
          const tables = await listRemoteTablesWithin(config, remote!);
          const where = config.schemas ? `schemas ${config.schemas.join(', ')}` : 'every non-system schema';
          return `${tables.length} table${tables.length === 1 ? '' : 's'} readable in ${where}`;
        },
      },
    ]);
    return checks.finally(() => (remote ? closeRemote(remote) : undefined));
  },
});

/** Kinds whose connections hold tables (refreshed by POST /refresh) rather than files. */
export const isDatabaseKind = (kind: string): boolean => kind === postgresKind.kind;
