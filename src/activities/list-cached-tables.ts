import type { ActivityDeps } from './deps.js';

/** A connection data refresh's work list: every table of the connection's catalog, in order. */
export function makeListCachedTables({ sql }: ActivityDeps) {
  return async function listCachedTables(input: {
    connectionId: string;
  }): Promise<{ schemaName: string; tableName: string }[]> {
    return sql<{ schemaName: string; tableName: string }[]>`
      select schema_name as "schemaName", table_name as "tableName"
      from autoloader.connection_tables where connection_id = ${input.connectionId}
      order by schema_name, table_name`;
  };
}
