/**
 * Every Temporal workflow id, schedule id and memo shape the service uses, in one place. Pure (no
 * I/O): workflows import it too.
 *
 * The ingestion's workflow id is the business key of "one mutating operation per ingestion": every
 * run, refresh, drop and clear of an ingestion runs under it, so Temporal itself refuses a second one
 * while one is open.
 */
export const workflowIds = {
  /** Runs, refreshes, drops, clears: one at a time per ingestion. */
  ingestion: (ingestionId: string) => `ingestion/${ingestionId}`,
  /** The run a refresh starts as its child (the refresh holds the ingestion's id meanwhile). */
  ingestionRun: (ingestionId: string, runId: string) => `ingestion/${ingestionId}/run/${runId}`,
  /** Read-only discovery for a dry run or an impact estimate; runs beside any mutating workflow. */
  estimate: (ingestionId: string, nonce: string) => `ingestion/${ingestionId}/estimate/${nonce}`,
  /** What a schedule tick starts; it then starts the real operation under `ingestion(id)`. */
  scheduledTick: (ingestionId: string, slot: ScheduleSlot = 'run') =>
    slot === 'run' ? `ingestion/${ingestionId}/scheduled` : `ingestion/${ingestionId}/scheduled-refresh`,
  /** One connection test (read-only; any number at once). */
  connectionTest: (connectionId: string, nonce: string) => `connection/${connectionId}/test/${nonce}`,
  /** A schema refresh (seed 004) of one database connection, or of all of a tenant's. */
  connectionSchemaRefresh: (connectionId: string, nonce: string) =>
    `connection/${connectionId}/schema-refresh/${nonce}`,
  tenantSchemaRefresh: (tenantId: string, nonce: string) => `tenant/${tenantId}/schema-refresh/${nonce}`,
  /**
   * A data refresh (seed 004) of one cached table: one at a time per table, so Temporal refuses a
   * second. Each remote name is URI-encoded, so `a/b`.`c` and `a`.`b/c` never share an id.
   */
  tableDataRefresh: (connectionId: string, schemaName: string, tableName: string) =>
    `connection/${connectionId}/data-refresh/${encodeURIComponent(schemaName)}/${encodeURIComponent(tableName)}`,
  /** A data refresh of every table of a connection: one at a time per connection. */
  connectionDataRefresh: (connectionId: string) => `connection/${connectionId}/data-refresh`,
  /** A batch refresh (seed 001's Phase 2): one workflow per batch, its members children of it. */
  batchRefresh: (tenantId: string, operationId: string) => `tenant/${tenantId}/batch-refresh/${operationId}`,
  /** The durable timer of one pending deletion. */
  deletion: (deletionId: string) => `deletion/${deletionId}`,
  /** The delivery of one event to one webhook: started once, whatever retries its starter makes. */
  webhookDelivery: (webhookId: string, eventId: string) => `webhook/${webhookId}/${eventId}`,
} as const;

/** An ingestion has at most two schedules (the contract): its run schedule and its refresh schedule. */
export const scheduleSlots = ['run', 'refresh'] as const;
export type ScheduleSlot = (typeof scheduleSlots)[number];

export const scheduleIds = {
  /** The ingestion's run schedule, as the Temporal UI lists it. */
  ingestion: (ingestionId: string) => `ingestion-${ingestionId}`,
  /** Its refresh schedule (seed 001's `refresh_schedule`). */
  refresh: (ingestionId: string) => `ingestion-${ingestionId}-refresh`,
  of: (ingestionId: string, slot: ScheduleSlot) =>
    slot === 'run' ? scheduleIds.ingestion(ingestionId) : scheduleIds.refresh(ingestionId),
} as const;

/**
 * The memo of an ingestion's mutating workflow: which run or operation holds the ingestion, so that a
 * 409 can name it without a database read.
 */
export interface OperationMemo {
  operation: string;
  runId?: string;
  operationId?: string;
}

/** The id a 409 points at: the run, else the operation. */
export function heldBy(memo: Partial<OperationMemo> | undefined): string | undefined {
  return memo?.runId ?? memo?.operationId;
}
