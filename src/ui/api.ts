import type { RunJson } from '../api/routes/runs.js';

/**
 * How the console reaches the API: `app.request` of the very app it is mounted in. Going through
 * the API (rather than the database) means the console sees exactly what the signed-in token may
 * see — tenancy, permissions and error codes come from the one place that defines them.
 */
export type ApiRequest = (path: string, init: RequestInit) => Response | Promise<Response>;

/** The API's one error shape (`src/api/errors.ts`), as the console reads it. */
export interface ApiErrorBody {
  detail: string;
  error_code: string;
  help?: string;
  current_run_id?: string;
  request_id?: string;
  field?: string;
}

export type ApiResult<T> =
  | { ok: true; status: number; body: T }
  | { ok: false; status: number; error: ApiErrorBody; body: Record<string, unknown> };

/** An API answer the page cannot do without: rendered as a readable error page by the router. */
export class ConsoleApiError extends Error {
  constructor(
    readonly status: number,
    readonly error: ApiErrorBody,
  ) {
    super(error.detail);
    this.name = 'ConsoleApiError';
  }
}

/** The token stopped working mid-session (revoked, or the tenant removed): back to sign-in. */
export class SessionExpired extends Error {
  constructor() {
    super('The API no longer accepts this token');
    this.name = 'SessionExpired';
  }
}

function asErrorBody(status: number, body: unknown): ApiErrorBody {
  const b = (body ?? {}) as Partial<ApiErrorBody>;
  return {
    ...(b as object),
    detail: typeof b.detail === 'string' ? b.detail : `The API answered HTTP ${status}`,
    error_code: typeof b.error_code === 'string' ? b.error_code : `HTTP_${status}`,
  };
}

export class ConsoleApi {
  constructor(
    private readonly request: ApiRequest,
    private readonly token: string,
  ) {}

  async call<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<ApiResult<T>> {
    const res = await this.request(`/api/v1${path}`, {
      method,
      headers: {
        authorization: `Bearer ${this.token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (res.status === 401) throw new SessionExpired();
    const text = await res.text();
    let parsed: unknown = {};
    if (text !== '') {
      try {
        parsed = JSON.parse(text);
      } catch (err) {
        // Every API route answers JSON; anything else is a bug worth a readable page, not a crash.
        if (!(err instanceof SyntaxError)) throw err;
        parsed = { detail: `The API answered HTTP ${res.status} with a body that is not JSON` };
      }
    }
    if (res.ok) return { ok: true, status: res.status, body: parsed as T };
    return {
      ok: false,
      status: res.status,
      error: asErrorBody(res.status, parsed),
      body: (parsed ?? {}) as Record<string, unknown>,
    };
  }

  /** GET that the page needs: a failure becomes the page's error. */
  async get<T>(path: string): Promise<T> {
    const r = await this.call<T>('GET', path);
    if (!r.ok) throw new ConsoleApiError(r.status, r.error);
    return r.body;
  }

  /** GET where one status means "none" (a schedule's 404): that status gives null. */
  async getOptional<T>(path: string, noneStatus: number): Promise<T | null> {
    const r = await this.call<T>('GET', path);
    if (r.ok) return r.body;
    if (r.status === noneStatus) return null;
    throw new ConsoleApiError(r.status, r.error);
  }

  post<T>(path: string, body?: unknown): Promise<ApiResult<T>> {
    return this.call<T>('POST', path, body);
  }
}

// The subset of each API body the console reads. The routes own the full shapes (src/api/routes).

export type Run = RunJson;

export interface Ingestion {
  id: string;
  name: string;
  connection_id: string;
  source: Record<string, unknown>;
  destination: string;
  status: 'active' | 'paused';
  created_at: string;
  updated_at: string;
}

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

export interface ProcessedFile {
  id: number;
  file_path: string;
  file_size_bytes: number;
  file_modified_at: string | null;
  status: string;
  run_id: string | null;
  processed_at: string | null;
  records_ingested: number | null;
  processing_duration_ms: number | null;
  error_message: string | null;
  error_type: string | null;
  retry_count: number;
  schema_version: number | null;
}

export interface Column {
  name: string;
  type: string;
}

export interface SchemaHistory {
  destination: string;
  schema_mode: string;
  declared_columns: Column[] | null;
  current_version: number | null;
  versions: {
    version: number;
    columns: Column[];
    added: Column[];
    first_file: string;
    run_id: string;
    created_at: string;
    files: number;
  }[];
}

export interface Schedule {
  schedule_id: string;
  cron?: string;
  interval_seconds?: number;
  timezone?: string;
  operation?: string;
  strategy?: string;
  paused: boolean;
  next_action_times: string[];
}

export type RefreshMode = 'full_refresh' | 'fresh_start';
export type RefreshStrategy = 'drop' | 'swap';

export interface Step {
  operation: string;
  status?: string;
  timestamp?: string;
  details?: Record<string, unknown>;
  error?: string | null;
  error_code?: string | null;
}

export interface DryRun {
  status: string;
  message: string;
  would_perform: Step[];
  impact: Record<string, number>;
  warnings: string[];
  notes: string[];
}

export interface RefreshAccepted {
  status: string;
  operation_id?: string;
  run_id?: string | null;
}

export interface Operation {
  id: string;
  ingestion_id: string;
  type: string;
  status: string;
  requested_by: string;
  auto_run: boolean;
  run_id: string | null;
  operations: Step[] | null;
  impact: Record<string, number> | null;
  warnings: string[] | null;
  notes: string[] | null;
  error: string | null;
  created_at: string;
  finished_at: string | null;
}

export interface PendingDeletion {
  id: string;
  ingestion_id: string | null;
  operation_id: string | null;
  table_name: string;
  due_at: string;
  executed_at: string | null;
  created_at: string;
}

export interface AuditEvent {
  id: number;
  subject: string;
  action: string;
  ingestion_id: string | null;
  operation_id: string | null;
  dry_run: boolean;
  impact: Record<string, number> | null;
  result: string;
  created_at: string;
}
