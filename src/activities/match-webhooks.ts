import type { WebhookEvent } from '../db/schema/index.js';
import type { ActivityDeps } from './deps.js';

/** What ended: a run, a refresh operation of an ingestion, or a pending deletion that was executed. */
export type WebhookSubject =
  | { kind: 'run'; runId: string }
  | { kind: 'operation'; operationId: string }
  | { kind: 'deletion'; deletionId: string };

/** The body every delivery of one event sends. */
export interface WebhookEventBody {
  id: string;
  type: WebhookEvent;
  created_at: string;
  data: Record<string, unknown>;
}

export interface MatchedWebhooks {
  /** Undefined when the subject's end is no event (a cancelled run, a deletion not executed). */
  event?: WebhookEventBody;
  tenantId?: string;
  ingestionId?: string | null;
  webhookIds: string[];
  deadlineSeconds: number;
  retryInitialSeconds: number;
}

interface Described {
  type: WebhookEvent | undefined;
  tenantId: string;
  ingestionId: string | null;
  data: Record<string, unknown>;
}

const runEvents: Record<string, WebhookEvent | undefined> = {
  SUCCESS: 'run.succeeded',
  PARTIAL_SUCCESS: 'run.partial_success',
  FAILED: 'run.failed',
};
const operationEvents: Record<string, WebhookEvent | undefined> = {
  success: 'refresh.completed',
  failed: 'refresh.failed',
  partial_failure: 'refresh.failed',
};

async function describe(sql: ActivityDeps['sql'], subject: WebhookSubject): Promise<Described | undefined> {
  if (subject.kind === 'run') {
    const [r] = await sql<
      (Record<string, unknown> & { status: string; tenant_id: string; ingestion_id: string })[]
    >`
      select r.id as run_id, r.ingestion_id, i.tenant_id, r.status, r.trigger,
             r.files_discovered, r.files_processed, r.files_failed, r.files_skipped,
             r.records_written::float8 as records_written, r.rows_rejected::float8 as rows_rejected,
             r.bytes_read::float8 as bytes_read, r.duration_ms::float8 as duration_ms, r.error,
             to_char(r.started_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as started_at,
             to_char(r.finished_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as finished_at
      from autoloader.runs r join autoloader.ingestions i on i.id = r.ingestion_id
      where r.id = ${subject.runId}`;
    if (!r) return undefined;
    const { tenant_id, ...data } = r;
    return {
      type: runEvents[r.status],
      tenantId: tenant_id,
      ingestionId: r.ingestion_id,
      data: { ...data, run_url: `/api/v1/runs/${subject.runId}` },
    };
  }
  if (subject.kind === 'operation') {
    const [o] = await sql<
      { operation_id: string; ingestion_id: string | null; tenant_id: string; type: string; status: string }[]
    >`
      select id as operation_id, ingestion_id, tenant_id, type, strategy, status, run_id, error,
             to_char(finished_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as finished_at
      from autoloader.operations where id = ${subject.operationId}`;
    if (!o) return undefined;
    const { tenant_id, ...data } = o;
    return {
      type: operationEvents[o.status],
      tenantId: tenant_id,
      ingestionId: o.ingestion_id,
      data: { ...data, operation_url: `/api/v1/operations/${subject.operationId}` },
    };
  }
  const [d] = await sql<
    { deletion_id: string; ingestion_id: string | null; tenant_id: string; executed_at: string | null }[]
  >`
    select id as deletion_id, ingestion_id, tenant_id, operation_id,
           schema_name || '.' || table_name as table_name,
           to_char(executed_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as executed_at
    from autoloader.pending_deletions where id = ${subject.deletionId}`;
  if (!d) return undefined;
  const { tenant_id, ...data } = d;
  return {
    type: d.executed_at ? 'deletion.done' : undefined,
    tenantId: tenant_id,
    ingestionId: d.ingestion_id,
    data,
  };
}

const subjectId = (s: WebhookSubject) =>
  s.kind === 'run' ? s.runId : s.kind === 'operation' ? s.operationId : s.deletionId;

/**
 * The event a finished run, operation or deletion makes, and the tenant's webhooks subscribed to
 * it. Read from the rows the workflow has just finished, so the body says what the API says. The
 * event id is derived from the subject (each ends once), so a retried call builds the same event.
 */
export function makeMatchWebhooks({ sql, webhooks }: ActivityDeps) {
  return async function matchWebhooks(input: { subject: WebhookSubject }): Promise<MatchedWebhooks> {
    const settings = {
      deadlineSeconds: webhooks.deliveryDeadlineSeconds,
      retryInitialSeconds: webhooks.retryInitialSeconds,
    };
    const described = await describe(sql, input.subject);
    if (!described?.type) return { webhookIds: [], ...settings };
    const type = described.type;
    const rows = await sql<{ id: string }[]>`
      select id from autoloader.webhooks
      where tenant_id = ${described.tenantId}
        and events ? ${type}
        and (ingestion_id is null or ingestion_id = ${described.ingestionId})
      order by id`;
    return {
      event: {
        id: `evt_${subjectId(input.subject)}`,
        type,
        created_at: new Date().toISOString(),
        data: described.data,
      },
      tenantId: described.tenantId,
      ingestionId: described.ingestionId,
      webhookIds: rows.map((r) => r.id),
      ...settings,
    };
  };
}
