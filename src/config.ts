import path from 'node:path';
import { z } from 'zod';
import { parseSecretKey } from './secrets/crypto.js';

// Environment variables arrive as strings: "false" must mean false, not a truthy string.
const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v));

const envSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Unset: readable lines on a terminal, JSON otherwise. */
  LOG_FORMAT: z.enum(['pretty', 'json']).optional(),
  /** Where `npm start` keeps the embedded Postgres and Temporal's SQLite file. */
  AUTOLOADER_DATA_DIR: z.string().default('.autoloader'),

  DATABASE_URL: optionalString,
  EMBEDDED_POSTGRES_PORT: z.coerce.number().int().min(0).max(65535).default(54329),

  TEMPORAL_ADDRESS: optionalString,
  TEMPORAL_NAMESPACE: z.string().default('default'),
  TEMPORAL_TASK_QUEUE: z.string().default('autoloader'),
  TEMPORAL_TLS: bool.default(false),
  TEMPORAL_TLS_CERT_PATH: optionalString,
  TEMPORAL_TLS_KEY_PATH: optionalString,
  TEMPORAL_API_KEY: optionalString,
  TEMPORAL_DEV_PORT: z.coerce.number().int().min(0).max(65535).default(7233),
  TEMPORAL_DEV_UI_PORT: z.coerce.number().int().min(0).max(65535).default(8233),
  /** The Temporal UI the console links to (npm start: the embedded dev server's). */
  TEMPORAL_UI_URL: optionalString,

  API_HOST: z.string().default('127.0.0.1'),
  API_PORT: z.coerce.number().int().min(0).max(65535).default(8080),

  /**
   * Folders (comma separated) `npm start` grants its development tenant besides the shipped samples/.
   * Other tenants' folders are their policy's local_roots.
   */
  LOCAL_SOURCE_ROOTS: z.string().default(''),
  /** 32 bytes (64 hex characters or base64) sealing stored secrets; `npm start` creates one. */
  AUTOLOADER_SECRET_KEY: optionalString,
  /** Private and loopback endpoints a tenant names are refused unless this is true. */
  AUTOLOADER_ALLOW_PRIVATE_ENDPOINTS: bool.default(false),
  /** When set (comma separated host names, *.suffix patterns, CIDRs), only endpoints matching it. */
  AUTOLOADER_ENDPOINT_ALLOWLIST: z.string().default(''),

  /** Activities one worker runs at once. Two cores: a few COPY streams saturate Postgres already. */
  WORKER_MAX_CONCURRENT_ACTIVITIES: z.coerce.number().int().min(1).default(8),
  /** Parallel file lanes per run: each lane is one COPY stream into the destination. */
  RUN_FILE_PARALLELISM: z.coerce.number().int().min(1).max(64).default(4),
  /** Small files are loaded several per activity to amortise the activity round trip. */
  RUN_BATCH_MAX_FILES: z.coerce.number().int().min(1).default(200),
  RUN_BATCH_MAX_BYTES: z.coerce
    .number()
    .int()
    .min(1)
    .default(64 * 1024 * 1024),
  /** A file that failed for an unknown reason is retried by later runs until it has failed this many times. */
  FILE_MAX_RETRIES: z.coerce.number().int().min(0).default(3),
  /** Attempts within a run at a file that keeps failing for an unknown reason, before it fails. */
  FILE_MAX_ATTEMPTS: z.coerce.number().int().min(1).default(5),
  /** How long a load waits for a lock on its table before the file fails (and is retried later). */
  LOAD_LOCK_TIMEOUT_SECONDS: z.coerce.number().int().min(1).default(60),
  /**
   * Small files a lane commits in one transaction (each still with its own rows and SUCCESS): the
   * per-commit cost is paid once for them. 1: each file its own transaction.
   */
  LOAD_SMALL_FILES_PER_TRANSACTION: z.coerce.number().int().min(1).default(50),
  /**
   * Large JSON-lines (and JSON array, Parquet) files whose keys the table has go in by one COPY into
   * the typed columns instead of through the jsonb staging table. Off by default: on 2 cores, with
   * Postgres on the same machine, the full-size bench measured it no faster than staging (103k vs
   * 108k rows/s), and each file in flight keeps a local copy of up to 1 GiB for its fallback.
   */
  LOAD_DIRECT_COPY: bool.default(true),

  /** Impact model for refresh estimates: what a GB costs to reprocess, and how fast we load. */
  REFRESH_COST_PER_GB_USD: z.coerce.number().min(0).default(0.25),
  REFRESH_THROUGHPUT_MB_PER_S: z.coerce.number().positive().default(40),
  REFRESH_SECONDS_PER_FILE: z.coerce.number().min(0).default(0.01),
  /** Operations estimated above this cost need a dry run by the same user first (seed 001: $500). */
  REFRESH_LARGE_OPERATION_USD: z.coerce.number().min(0).default(500),
  /** Full refreshes one user may start per hour (seed 001: 5). */
  REFRESH_RATE_LIMIT_PER_HOUR: z.coerce.number().int().min(1).default(5),
  /** How many ingestions of a batch refresh are refreshed at once. */
  BATCH_REFRESH_PARALLELISM: z.coerce.number().int().min(1).max(64).default(4),
  /** How long a swap full refresh whose checks failed waits for approval before it aborts (24 h). */
  REFRESH_APPROVAL_TIMEOUT_SECONDS: z.coerce.number().int().min(1).default(86_400),
  /** How many tables of one connection a data refresh (`POST /refresh`) refreshes at once (seed 004: 4). */
  CONNECTION_REFRESH_PARALLELISM: z.coerce.number().int().min(1).max(64).default(4),
  /** How long a refresh request waits for its preparatory steps before answering. */
  REFRESH_RESPONSE_WAIT_MS: z.coerce.number().int().min(0).default(15_000),
  /** The shortest interval between two ticks of a run schedule, and of a refresh schedule. */
  SCHEDULE_MIN_RUN_INTERVAL_SECONDS: z.coerce.number().int().min(1).default(60),
  SCHEDULE_MIN_REFRESH_INTERVAL_SECONDS: z.coerce.number().int().min(1).default(3600),
  /** When set, GET /metrics needs `Authorization: Bearer <this>`. */
  METRICS_TOKEN: optionalString,
  /** How long a computed /metrics answer is served again (aggregates are not run per scrape). */
  METRICS_CACHE_SECONDS: z.coerce.number().int().min(0).default(30),
  /** How long the previous table version survives a swap refresh (seed 004: 60 s). */
  REFRESH_SWAP_GRACE_SECONDS: z.coerce
    .number()
    .int()
    .min(0)
    .max(7 * 24 * 3600)
    .default(60),
  /** How long a webhook delivery is retried (exponential backoff) before it is given up: 24 h. */
  WEBHOOK_DELIVERY_DEADLINE_SECONDS: z.coerce.number().int().min(1).default(86_400),
  /** The first retry's delay; each next one doubles, up to an hour. */
  WEBHOOK_RETRY_INITIAL_SECONDS: z.coerce.number().min(0.1).default(10),
});

export type Config = ReturnType<typeof loadConfig>;

export function loadConfig(env: NodeJS.ProcessEnv = process.env) {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new Error(`Invalid configuration: ${problems}`);
  }
  const e = parsed.data;
  if (e.TEMPORAL_TLS_CERT_PATH && !e.TEMPORAL_TLS_KEY_PATH) {
    throw new Error('Invalid configuration: TEMPORAL_TLS_CERT_PATH needs TEMPORAL_TLS_KEY_PATH');
  }
  return {
    env: e.NODE_ENV,
    logLevel: e.LOG_LEVEL,
    logFormat: e.LOG_FORMAT,
    dataDir: path.resolve(e.AUTOLOADER_DATA_DIR),
    databaseUrl: e.DATABASE_URL,
    embeddedPostgresPort: e.EMBEDDED_POSTGRES_PORT,
    temporal: {
      address: e.TEMPORAL_ADDRESS,
      namespace: e.TEMPORAL_NAMESPACE,
      taskQueue: e.TEMPORAL_TASK_QUEUE,
      tls: e.TEMPORAL_TLS || Boolean(e.TEMPORAL_TLS_CERT_PATH) || Boolean(e.TEMPORAL_API_KEY),
      tlsCertPath: e.TEMPORAL_TLS_CERT_PATH,
      tlsKeyPath: e.TEMPORAL_TLS_KEY_PATH,
      apiKey: e.TEMPORAL_API_KEY,
      devPort: e.TEMPORAL_DEV_PORT,
      devUiPort: e.TEMPORAL_DEV_UI_PORT,
      uiUrl: e.TEMPORAL_UI_URL,
    },
    api: { host: e.API_HOST, port: e.API_PORT },
    localSourceRoots: e.LOCAL_SOURCE_ROOTS.split(',')
      .map((p) => p.trim())
      .filter(Boolean)
      .map((p) => path.resolve(p)),
    secretKey: e.AUTOLOADER_SECRET_KEY ? parseSecretKey(e.AUTOLOADER_SECRET_KEY) : undefined,
    address: {
      allowPrivate: e.AUTOLOADER_ALLOW_PRIVATE_ENDPOINTS,
      allowList: e.AUTOLOADER_ENDPOINT_ALLOWLIST.split(',')
        .map((p) => p.trim())
        .filter(Boolean),
    },
    worker: {
      maxConcurrentActivities: e.WORKER_MAX_CONCURRENT_ACTIVITIES,
    },
    run: {
      fileParallelism: e.RUN_FILE_PARALLELISM,
      batchMaxFiles: e.RUN_BATCH_MAX_FILES,
      batchMaxBytes: e.RUN_BATCH_MAX_BYTES,
      fileMaxRetries: e.FILE_MAX_RETRIES,
      fileMaxAttempts: e.FILE_MAX_ATTEMPTS,
      lockTimeoutSeconds: e.LOAD_LOCK_TIMEOUT_SECONDS,
      smallFilesPerTransaction: e.LOAD_SMALL_FILES_PER_TRANSACTION,
      directCopy: e.LOAD_DIRECT_COPY,
    },
    schedules: {
      minRunIntervalSeconds: e.SCHEDULE_MIN_RUN_INTERVAL_SECONDS,
      minRefreshIntervalSeconds: e.SCHEDULE_MIN_REFRESH_INTERVAL_SECONDS,
    },
    metrics: { token: e.METRICS_TOKEN, cacheSeconds: e.METRICS_CACHE_SECONDS },
    refresh: {
      costPerGbUsd: e.REFRESH_COST_PER_GB_USD,
      throughputMbPerS: e.REFRESH_THROUGHPUT_MB_PER_S,
      secondsPerFile: e.REFRESH_SECONDS_PER_FILE,
      largeOperationUsd: e.REFRESH_LARGE_OPERATION_USD,
      rateLimitPerHour: e.REFRESH_RATE_LIMIT_PER_HOUR,
      responseWaitMs: e.REFRESH_RESPONSE_WAIT_MS,
      swapGraceSeconds: e.REFRESH_SWAP_GRACE_SECONDS,
      batchParallelism: e.BATCH_REFRESH_PARALLELISM,
      connectionParallelism: e.CONNECTION_REFRESH_PARALLELISM,
      approvalTimeoutSeconds: e.REFRESH_APPROVAL_TIMEOUT_SECONDS,
    },
    webhooks: {
      deliveryDeadlineSeconds: e.WEBHOOK_DELIVERY_DEADLINE_SECONDS,
      retryInitialSeconds: e.WEBHOOK_RETRY_INITIAL_SECONDS,
    },
  };
}
