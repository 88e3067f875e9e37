/**
 * The API's JSON as the CLI reads it. Where the server exports a type it is reused (type-only
 * imports: nothing of the server is loaded at run time); the rest lists just the fields used here.
 */
import type { RunJson } from '../api/routes/runs.js';
import type { OperationStep, RunStatus } from '../db/schema/index.js';
import type { Impact } from '../services/impact.js';

export type { OperationStep, RunJson, RunStatus };

export interface Page<T> {
  items: T[];
  next_cursor?: string | null;
}

export interface ConnectionJson {
  id: string;
  name: string;
  kind: string;
  config: Record<string, unknown>;
  created_at: string;
}

export interface ConnectionTestJson {
  ok: boolean;
  checks: { name: string; ok: boolean; detail?: string | null }[];
}

export interface IngestionJson {
  id: string;
  name: string;
  connection_id: string;
  source: Record<string, unknown>;
  destination: string;
  status: string;
  created_at: string;
  updated_at: string;
}

export interface ProcessedFileJson {
  id: number;
  file_path: string;
  file_size_bytes: number;
  status: string;
  run_id: string | null;
  processed_at: string | null;
  records_ingested: number | null;
  error_message: string | null;
  error_type: string | null;
  retry_count: number;
  schema_version: number | null;
}

export interface SchemaColumn {
  name: string;
  type: string;
}

export interface SchemaJson {
  ingestion_id: string;
  destination: string;
  schema_mode: string;
  declared_columns: SchemaColumn[] | null;
  current_version: number | null;
  versions: {
    version: number;
    columns: SchemaColumn[];
    added: SchemaColumn[];
    first_file: string;
    run_id: string;
    created_at: string;
    files: number;
  }[];
}

/** A refresh request's answer (seed 001): a dry run, an acceptance, or a partial failure. */
export interface RefreshResponseJson {
  status: string;
  message?: string;
  ingestion_id?: string;
  operation_id?: string;
  operation_url?: string;
  run_id?: string | null;
  operations?: OperationStep[];
  would_perform?: { operation: string; details?: Record<string, unknown> }[];
  impact?: Partial<Impact>;
  warnings?: string[];
  notes?: string[];
  next_steps?: Record<string, string>;
  /** A dry run's plan: `--plan` runs exactly what it previewed. */
  plan_id?: string;
  plan_expires_at?: string;
  recovery?: { message?: string; action?: string; state?: string };
  details?: Record<string, unknown>;
}

/** GET /operations/{id}. `finished_at` is null while it runs, including while a failing step is retried. */
export interface OperationJson {
  id: string;
  ingestion_id?: string | null;
  /** A connection's operation (seed 004's data refresh) instead of an ingestion's. */
  connection_id?: string | null;
  type?: string;
  status: string;
  message?: string;
  run_id?: string | null;
  operations?: OperationStep[];
  impact?: Partial<Impact>;
  warnings?: string[];
  notes?: string[];
  error?: string | null;
  created_at?: string;
  finished_at?: string | null;
  /** Seed 004's body once a connection's data refresh ended. */
  result?: Record<string, unknown> | null;
}

export interface ScheduleJson {
  schedule_id: string;
  ingestion_id: string;
  cron?: string;
  interval_seconds?: number;
  timezone?: string;
  operation?: string;
  strategy?: string;
  paused: boolean;
  next_action_times: string[];
  recent_actions: { scheduled_at: string; workflow_id: string }[];
}
