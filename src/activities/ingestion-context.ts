import { ApplicationFailure } from '@temporalio/activity';
import type { Sql } from '../db/client.js';
import { csvOptionsSchema, type Source, sourceSchema } from '../domain/schemas.js';
import type { ConnectionKind, ConnectionRecord } from '../sources/index.js';

export interface IngestionContext {
  ingestionId: string;
  tenantId: string;
  source: Source;
  csv: ReturnType<typeof csvOptionsSchema.parse>;
  destination: { schema: string; table: string };
  /** Its store comes from the activity's store factory, when the activity reads files. */
  connection: ConnectionRecord;
}

/** Everything an activity needs about an ingestion, read fresh from Postgres (never carried in history). */
export async function loadIngestionContext(
  sql: Sql,
  ingestionId: string,
  /** Load into this table of the destination schema instead (a swap refresh's shadow table). */
  tableOverride?: string,
): Promise<IngestionContext> {
  const [row] = await sql<
    {
      tenantId: string;
      source: unknown;
      destinationSchema: string;
      destinationTable: string;
      connectionId: string;
      kind: ConnectionKind;
      config: unknown;
    }[]
  >`
    select i.tenant_id as "tenantId", i.source, i.destination_schema as "destinationSchema",
           i.destination_table as "destinationTable", c.id as "connectionId", c.kind, c.config
    from autoloader.ingestions i join autoloader.connections c on c.id = i.connection_id
    where i.id = ${ingestionId}`;
  if (!row)
    throw ApplicationFailure.nonRetryable(`ingestion ${ingestionId} no longer exists`, 'IngestionNotFound');
  const source = sourceSchema.parse(row.source);
  return {
    ingestionId,
    tenantId: row.tenantId,
    source,
    csv: csvOptionsSchema.parse(source.format_options),
    destination: { schema: row.destinationSchema, table: tableOverride ?? row.destinationTable },
    connection: { id: row.connectionId, tenantId: row.tenantId, kind: row.kind, config: row.config },
  };
}
