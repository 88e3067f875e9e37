import { drizzle } from 'drizzle-orm/postgres-js';
import postgres from 'postgres';
import * as schema from './schema/index.js';

export type Sql = postgres.Sql;
export type Db = ReturnType<typeof createDb>['db'];

export interface DbOptions {
  /** Connections in the raw-SQL pool (COPY streams, set-based state changes). */
  max?: number;
  applicationName?: string;
}

/**
 * Two pools: drizzle (typed CRUD in the API) and raw postgres.js (COPY, set-based queries). drizzle
 * replaces the driver's date and date-array (de)serialisers on the client it is given, which would
 * silently change what raw queries send and receive; keeping its client separate keeps both honest.
 */
export function createDb(url: string, opts: DbOptions = {}) {
  const common = {
    // Notices (e.g. "relation already exists, skipping") are expected on idempotent DDL.
    onnotice: () => undefined,
    connection: { application_name: opts.applicationName ?? 'autoloader', TimeZone: 'UTC' },
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
