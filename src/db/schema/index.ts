import { sql } from 'drizzle-orm';
import {
  bigint,
  bigserial,
  boolean,
  customType,
  index,
  integer,
  jsonb,
  pgSchema,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
} from 'drizzle-orm/pg-core';

const bytea = customType<{ data: Buffer }>({ dataType: () => 'bytea' });

import { operationTypes, refreshStrategies } from '../../refresh/modes.js';
import type { CatalogColumn } from '../../sources/postgres.js';
import type { ConnectionKind } from '../../sources/registry.js';

/**
 * The service's own state lives in the `autoloader` schema so that destination tables
 * (any `schema.table` a user names) can never collide with it.
 */
export const autoloader = pgSchema('autoloader');

const createdAt = () => timestamp({ withTimezone: true }).notNull().defaultNow();

export const tenants = autoloader.table('tenants', {
  id: text().primaryKey(),
  name: text().notNull(),
  /** What the operator allows this tenant (src/tenancy/policy.ts): folders, env prefixes, credentials. */
  policy: jsonb().notNull().default({}),
  createdAt: createdAt(),
});

export const apiTokens = autoloader.table(
  'api_tokens',
  {
    id: text().primaryKey(),
    tenantId: text()
      .notNull()
      .references(() => tenants.id, { onDelete: 'cascade' }),
    name: text().notNull(),
    /** sha256 of the token: a leaked database does not leak usable tokens. */
    tokenHash: text().notNull(),
    /** Who the token acts for: recorded in audit events. */
    subject: text().notNull(),
    permissions: text().array().notNull().default(sql`'{}'::text[]`),
    createdAt: createdAt(),
    /** After this the token no longer authenticates; null: no expiry. */
    expiresAt: timestamp({ withTimezone: true }),
    revokedAt: timestamp({ withTimezone: true }),
  },
  (t) => [uniqueIndex('api_tokens_token_hash_idx').on(t.tokenHash)],
);

/**
 * Credentials a tenant stored through the API, encrypted at rest (AES-256-GCM under
 * AUTOLOADER_SECRET_KEY, bound to tenant and name). Write-only: the API returns names and dates.
 */
export const secrets = autoloader.table(
  'secrets',
  {
    id: text().primaryKey(),
    tenantId: text()
      .notNull()
      .references(() => tenants.id, { onDelete: 'cascade' }),
    name: text().notNull(),
    /** version byte, 12-byte nonce, 16-byte tag, ciphertext. */
    sealed: bytea().notNull(),
    createdAt: createdAt(),
    updatedAt: createdAt(),
  },
  (t) => [uniqueIndex('secrets_tenant_name_idx').on(t.tenantId, t.name)],
);

/**
 * Every table the service created, and who owns it: a tenant, and the ingestion (or database
 * connection) that writes it. A table is loaded only by its owner; a table the service did not
 * create is never a destination unless an admin adopts it.
 */
export const ownedTables = autoloader.table(
  'owned_tables',
  {
    schemaName: text().notNull(),
    tableName: text().notNull(),
    tenantId: text().notNull(),
    /** The ingestion writing it; null once that ingestion is deleted (the table stays the tenant's). */
    ingestionId: text(),
    /** A database connection's cache (seed 004) instead of an ingestion's destination. */
    connectionId: text(),
    createdAt: createdAt(),
  },
  (t) => [
    primaryKey({ columns: [t.schemaName, t.tableName] }),
    index('owned_tables_tenant_idx').on(t.tenantId),
  ],
);

export const connections = autoloader.table(
  'connections',
  {
    id: text().primaryKey(),
    tenantId: text()
      .notNull()
      .references(() => tenants.id, { onDelete: 'cascade' }),
    name: text().notNull(),
    /** A kind of the source registry (src/sources/registry.ts). */
    kind: text().$type<ConnectionKind>().notNull(),
    /** Kind-specific settings; S3 credentials are env-var *names*, never secrets. */
    config: jsonb().notNull(),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex('connections_tenant_name_idx').on(t.tenantId, t.name)],
);

export const ingestions = autoloader.table(
  'ingestions',
  {
    id: text().primaryKey(),
    tenantId: text()
      .notNull()
      .references(() => tenants.id, { onDelete: 'cascade' }),
    name: text().notNull(),
    connectionId: text()
      .notNull()
      .references(() => connections.id, { onDelete: 'restrict' }),
    /** {bucket, prefix, pattern, format, format_options} as accepted by the API. */
    source: jsonb().notNull(),
    destinationSchema: text().notNull(),
    destinationTable: text().notNull(),
    status: text({ enum: ['active', 'paused'] })
      .notNull()
      .default('active'),
    createdAt: createdAt(),
    updatedAt: createdAt(),
  },
  (t) => [
    uniqueIndex('ingestions_tenant_name_idx').on(t.tenantId, t.name),
    uniqueIndex('ingestions_destination_idx').on(t.destinationSchema, t.destinationTable),
  ],
);

export const runStatuses = [
  'RUNNING',
  'PAUSED',
  'SUCCESS',
  'PARTIAL_SUCCESS',
  'FAILED',
  'CANCELLED',
] as const;
export type RunStatus = (typeof runStatuses)[number];

export const runs = autoloader.table(
  'runs',
  {
    id: text().primaryKey(),
    ingestionId: text()
      .notNull()
      .references(() => ingestions.id, { onDelete: 'cascade' }),
    status: text({ enum: runStatuses }).notNull(),
    trigger: text().notNull(),
    workflowId: text().notNull(),
    startedAt: createdAt(),
    finishedAt: timestamp({ withTimezone: true }),
    filesDiscovered: integer().notNull().default(0),
    filesProcessed: integer().notNull().default(0),
    filesFailed: integer().notNull().default(0),
    filesSkipped: integer().notNull().default(0),
    recordsWritten: bigint({ mode: 'number' }).notNull().default(0),
    rowsRejected: bigint({ mode: 'number' }).notNull().default(0),
    bytesRead: bigint({ mode: 'number' }).notNull().default(0),
    durationMs: bigint({ mode: 'number' }),
    /** Last key whose listing page is committed: discovery resumes after it, exactly once. */
    discoveryCursor: text(),
    discoveryDone: boolean().notNull().default(false),
    error: text(),
  },
  (t) => [index('runs_ingestion_started_idx').on(t.ingestionId, t.startedAt)],
);

export const fileStatuses = ['DISCOVERED', 'PROCESSING', 'SUCCESS', 'FAILED', 'SKIPPED'] as const;
export type FileStatus = (typeof fileStatuses)[number];

/** Seed 002's table: one row per file path of an ingestion, carrying its latest state. */
export const processedFiles = autoloader.table(
  'processed_files',
  {
    id: bigserial({ mode: 'number' }).primaryKey(),
    ingestionId: text()
      .notNull()
      .references(() => ingestions.id, { onDelete: 'cascade' }),
    runId: text(),
    /**
     * 'live' for the ingestion's history. A swap refresh loads into a shadow table under its own
     * scope, and the swap transaction makes that scope the live one; the replaced version's history
     * waits under `aside:<its table>` until that version is deleted (a rollback makes it live again).
     */
    scope: text().notNull().default('live'),
    filePath: text().notNull(),
    fileSizeBytes: bigint({ mode: 'number' }).notNull(),
    fileModifiedAt: timestamp({ withTimezone: true }),
    fileEtag: text(),
    status: text({ enum: fileStatuses }).notNull(),
    /** Which run lane holds the file while PROCESSING, so a retried lane resumes its own files. */
    claimedBy: text(),
    discoveredAt: createdAt(),
    processingStartedAt: timestamp({ withTimezone: true }),
    processedAt: timestamp({ withTimezone: true }),
    recordsIngested: bigint({ mode: 'number' }),
    bytesRead: bigint({ mode: 'number' }),
    processingDurationMs: bigint({ mode: 'number' }),
    errorMessage: text(),
    errorType: text(),
    /**
     * The failure is the file's own (its data, a denied or archived object): this version is not
     * retried; a new ETag is. Otherwise (an unknown error) later runs retry it up to FILE_MAX_RETRIES.
     */
    errorPermanent: boolean().notNull().default(false),
    retryCount: integer().notNull().default(0),
    /** Attempts at this version that ended in an unknown error (counted to give up, not forever). */
    loadAttempts: integer().notNull().default(0),
    /** Rows of the file the row error policy (on_error: skip_rows) set aside. */
    rowsRejected: bigint({ mode: 'number' }),
    /** The schema_versions.version of the destination columns this file was last loaded with. */
    schemaVersion: integer(),
    createdAt: createdAt(),
    updatedAt: createdAt(),
  },
  (t) => [
    uniqueIndex('processed_files_ingestion_scope_path_idx').on(t.ingestionId, t.scope, t.filePath),
    index('idx_processed_files_ingestion_status').on(t.ingestionId, t.status),
    // A lane's claim reads the run's queued files in id order, a status at a time (claimBatch): in
    // this index that is a range scan that stops at the batch, not a sort of every file of the run.
    index('idx_processed_files_run').on(t.runId, t.status, t.id),
  ],
);

/**
 * Rows a file could not load under `on_error: skip_rows`: the file loaded its good rows, these are
 * kept for people to look at (GET /ingestions/{id}/rejected-rows). They go when the file is loaded
 * again (a new version, a reprocess, a full refresh).
 */
export const rejectedRows = autoloader.table(
  'rejected_rows',
  {
    id: bigserial({ mode: 'number' }).primaryKey(),
    ingestionId: text()
      .notNull()
      .references(() => ingestions.id, { onDelete: 'cascade' }),
    /** The file's ledger row: forgetting the file (clear, reprocess, a swap) forgets its rejected rows. */
    fileId: bigint({ mode: 'number' })
      .notNull()
      .references(() => processedFiles.id, { onDelete: 'cascade' }),
    filePath: text().notNull(),
    runId: text().notNull(),
    /** The line of the file the row starts on. */
    line: bigint({ mode: 'number' }).notNull(),
    error: text().notNull(),
    /** The row as it was in the file, capped. */
    raw: text().notNull(),
    createdAt: createdAt(),
  },
  (t) => [
    index('rejected_rows_file_idx').on(t.fileId),
    index('rejected_rows_ingestion_idx').on(t.ingestionId, t.id),
  ],
);

/** A destination column as the schema history reports it. */
export interface SchemaColumn {
  name: string;
  type: string;
  /** The field's name in the files, when the column could not be named like it (too long, empty, reserved). */
  source_name?: string;
}

/**
 * The schema history of an ingestion: each distinct set of destination columns a file was loaded
 * with, numbered in the order they first appeared. Processed files point at their version.
 */
export const schemaVersions = autoloader.table(
  'schema_versions',
  {
    id: bigserial({ mode: 'number' }).primaryKey(),
    ingestionId: text()
      .notNull()
      .references(() => ingestions.id, { onDelete: 'cascade' }),
    version: integer().notNull(),
    /** sha256 of the column list, to find a version again without comparing lists. */
    fingerprint: text().notNull(),
    columns: jsonb().$type<SchemaColumn[]>().notNull(),
    /** The file (and its run) that first loaded with these columns. */
    firstFile: text().notNull(),
    runId: text().notNull(),
    createdAt: createdAt(),
  },
  (t) => [
    uniqueIndex('schema_versions_ingestion_version_idx').on(t.ingestionId, t.version),
    uniqueIndex('schema_versions_ingestion_fingerprint_idx').on(t.ingestionId, t.fingerprint),
  ],
);

/** The contract's operation statuses (a dry run answers `dry_run` and records no operation). */
export const operationStatuses = [
  'accepted',
  'running',
  'awaiting_approval',
  'success',
  'partial_failure',
  'failed',
  'cancelled',
] as const;
export type OperationStatus = (typeof operationStatuses)[number];

/** One step of an operation as seed 001 reports it (`table_dropped`, `processed_files_cleared`, `run_triggered`). */
export interface OperationStep {
  operation: string;
  status: 'success' | 'failed' | 'skipped' | 'pending';
  timestamp: string;
  details: Record<string, unknown>;
  error?: string | null;
  error_code?: string | null;
}

/** Seed 004's data refreshes of a database connection, recorded as operations of the connection. */
export const connectionOperationTypes = ['table_data_refresh', 'connection_data_refresh'] as const;

/** A batch refresh's own operation: its members are operations of their ingestions. */
export const batchOperationTypes = ['batch_refresh'] as const;

/**
 * A refresh request: its steps are written by the workflow as they complete. It belongs to an
 * ingestion or (seed 004's data refresh) to a connection; either goes with its owner when that is
 * deleted (cascade), as the audit events stay. `result` is the seed's body once it ends.
 */
export const operations = autoloader.table(
  'operations',
  {
    id: text().primaryKey(),
    ingestionId: text().references(() => ingestions.id, { onDelete: 'cascade' }),
    connectionId: text().references(() => connections.id, { onDelete: 'cascade' }),
    tenantId: text().notNull(),
    type: text({ enum: [...operationTypes, ...connectionOperationTypes, ...batchOperationTypes] }).notNull(),
    strategy: text({ enum: refreshStrategies }).notNull().default('drop'),
    status: text({ enum: operationStatuses }).notNull(),
    requestedBy: text().notNull(),
    autoRun: boolean().notNull(),
    runId: text(),
    workflowId: text().notNull(),
    steps: jsonb().$type<OperationStep[]>().notNull().default([]),
    impact: jsonb().notNull(),
    warnings: jsonb().$type<string[]>().notNull().default([]),
    notes: jsonb().$type<string[]>().notNull().default([]),
    error: text(),
    createdAt: createdAt(),
    finishedAt: timestamp({ withTimezone: true }),
    result: jsonb(),
  },
  (t) => [
    index('operations_ingestion_created_idx').on(t.ingestionId, t.createdAt),
    index('operations_connection_created_idx').on(t.connectionId, t.createdAt),
  ],
);

/** Who did what destructive thing, when, with what impact — kept when the ingestion is deleted. */
export const auditEvents = autoloader.table(
  'audit_events',
  {
    id: bigserial({ mode: 'number' }).primaryKey(),
    tenantId: text().notNull(),
    subject: text().notNull(),
    action: text().notNull(),
    ingestionId: text(),
    operationId: text(),
    dryRun: boolean().notNull().default(false),
    impact: jsonb(),
    result: text().notNull(),
    createdAt: createdAt(),
  },
  (t) => [
    index('audit_events_tenant_created_idx').on(t.tenantId, t.createdAt),
    index('audit_events_subject_action_idx').on(t.subject, t.action, t.createdAt),
  ],
);

/**
 * Something to delete after a grace period (seed 004): the previous table version after a swap.
 * A durable Temporal timer carries each one out; rows already due are also swept at start-up.
 */
export const pendingDeletions = autoloader.table(
  'pending_deletions',
  {
    id: text().primaryKey(),
    ingestionId: text(),
    operationId: text(),
    tenantId: text().notNull(),
    schemaName: text().notNull(),
    tableName: text().notNull(),
    dueAt: timestamp({ withTimezone: true }).notNull(),
    executedAt: timestamp({ withTimezone: true }),
    /** Attempts the database refused (a dependent object, a lock not granted); bounded, not retried for ever. */
    attempts: integer().notNull().default(0),
    lastError: text(),
    /** Set when the attempts ran out: the deletion waits for a person, and lastError says what to do. */
    failedAt: timestamp({ withTimezone: true }),
    createdAt: createdAt(),
  },
  (t) => [index('pending_deletions_due_idx').on(t.dueAt)],
);

/**
 * The catalog of a database connection (seed 004): one row per remote table, keyed by its original
 * (remote) names. A schema refresh upserts what it discovers and removes what is gone; the cached
 * version and its figures belong to data refreshes and stay untouched by schema refreshes.
 */
export const connectionTables = autoloader.table(
  'connection_tables',
  {
    connectionId: text()
      .notNull()
      .references(() => connections.id, { onDelete: 'cascade' }),
    schemaName: text().notNull(),
    tableName: text().notNull(),
    columns: jsonb().$type<CatalogColumn[]>().notNull(),
    /** sha256 of the columns in order: a schema refresh counts a table as modified when it changes. */
    columnFingerprint: text().notNull(),
    /** The cached table's current version (a data refresh's versioned name); null until one ran. */
    cachedVersion: text(),
    rowsCached: bigint({ mode: 'number' }),
    bytesCached: bigint({ mode: 'number' }),
    lastSyncedAt: timestamp({ withTimezone: true }),
    discoveredAt: createdAt(),
    updatedAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.connectionId, t.schemaName, t.tableName] })],
);

/** The events a webhook can subscribe to. */
export const webhookEvents = [
  'run.succeeded',
  'run.failed',
  'run.partial_success',
  'refresh.completed',
  'refresh.failed',
  'deletion.done',
] as const;
export type WebhookEvent = (typeof webhookEvents)[number];

/**
 * A tenant's notification webhook. The signing secret is a reference to a stored secret (or an
 * allowed env variable), never the value: it is sealed at rest and rotated like any credential.
 */
export const webhooks = autoloader.table(
  'webhooks',
  {
    id: text().primaryKey(),
    tenantId: text()
      .notNull()
      .references(() => tenants.id, { onDelete: 'cascade' }),
    url: text().notNull(),
    events: jsonb().$type<WebhookEvent[]>().notNull(),
    /** Only this ingestion's events; null: all of the tenant's. Not a foreign key: a filter outlives nothing. */
    ingestionId: text(),
    secretRef: jsonb().$type<{ secret: string } | { env: string }>().notNull(),
    createdBy: text().notNull(),
    createdAt: createdAt(),
  },
  (t) => [index('webhooks_tenant_idx').on(t.tenantId)],
);

/** Every delivery attempt of every event to a webhook: its answer (status code) or why it failed. */
export const webhookDeliveries = autoloader.table(
  'webhook_deliveries',
  {
    id: bigserial({ mode: 'number' }).primaryKey(),
    webhookId: text()
      .notNull()
      .references(() => webhooks.id, { onDelete: 'cascade' }),
    eventId: text().notNull(),
    eventType: text().notNull(),
    attempt: integer().notNull(),
    statusCode: integer(),
    error: text(),
    attemptedAt: createdAt(),
  },
  (t) => [index('webhook_deliveries_webhook_idx').on(t.webhookId, t.id)],
);
