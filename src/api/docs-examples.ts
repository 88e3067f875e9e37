/**
 * Request and response examples for the API reference, taken from seed 001's and seed 004's bodies
 * (their ids, tables and figures) as this service answers them: where our body has more than the
 * seed's (`operation_id`, `files_skipped`…) the example has it too, so every example matches its
 * route's schema (tests/integration/api-docs.test.ts checks that). Kept here, by method and path,
 * rather than in the route files, and attached only to routes the document has: an entry for a
 * route not built yet waits for it.
 */
interface Example {
  summary: string;
  value: unknown;
}
interface OperationExamples {
  request?: Record<string, Example>;
  responses?: Partial<Record<'200' | '202' | '400' | '404' | '409' | '500', Record<string, Example>>>;
}

const ingestionId = 'ing-abc123';
const runId = 'run-xyz789';
const operationId = 'op-abc123';
const table = 'raw.sales_data';

const fullImpact = {
  files_to_process: 1247,
  files_skipped: 0,
  estimated_data_size_bytes: 483398569165,
  estimated_data_size_gb: 450.2,
  estimated_cost_usd: 125.5,
  estimated_duration_minutes: 45,
};
const freshImpact = {
  files_to_process: 23,
  files_skipped: 1247,
  estimated_data_size_bytes: 9126805504,
  estimated_data_size_gb: 8.5,
  estimated_cost_usd: 2.3,
  estimated_duration_minutes: 5,
};

const tableDropped = {
  operation: 'table_dropped',
  status: 'success',
  timestamp: '2025-01-05T10:30:01Z',
  details: { table_name: table, table_existed: true, table_size_gb: 450.2, row_count: 12450000 },
};
const filesCleared = {
  operation: 'processed_files_cleared',
  status: 'success',
  timestamp: '2025-01-05T10:30:02Z',
  details: {
    files_cleared: 1247,
    oldest_file: '2024-01-01/data.parquet',
    newest_file: '2025-01-04/data.parquet',
  },
};
const runTriggered = (timestamp: string) => ({
  operation: 'run_triggered',
  status: 'success',
  timestamp,
  details: { run_id: runId, run_url: `/api/v1/runs/${runId}` },
});
const tableToDrop = {
  operation: 'table_dropped',
  details: { table_name: table, table_exists: true, current_size_gb: 450.2, current_row_count: 12450000 },
};

const started = (title: string) => ({
  status: 'accepted',
  message: `${title} started: run triggered`,
  ingestion_id: ingestionId,
  operation_id: operationId,
  operation_url: `/api/v1/operations/${operationId}`,
  run_id: runId,
  timestamp: '2025-01-05T10:30:00Z',
});

const planId = 'plan_8f3kq2m9x7c4v1bn';

const dryRun = (path: string) => ({
  status: 'dry_run',
  message: 'Preview of operations (not executed)',
  ingestion_id: ingestionId,
  timestamp: '2025-01-05T10:30:00Z',
  plan_id: planId,
  plan_expires_at: '2025-01-05T11:30:00.000Z',
  next_steps: {
    to_proceed: `POST /api/v1/ingestions/${ingestionId}/${path} with confirm=true and plan_id=${planId} (or without plan_id to run whatever the source holds then)`,
    to_cancel: 'No action needed',
  },
});

/** The refusals every refresh operation shares; the 409 names the operation, as the service does. */
const refreshErrors = (title: string) => ({
  '400': {
    confirmation_required: {
      summary: 'confirm missing or false',
      value: {
        detail: 'Confirmation required. Set confirm=true to proceed.',
        error_code: 'CONFIRMATION_REQUIRED',
        help: 'This operation is destructive. Explicitly set confirm=true to proceed.',
      },
    },
  },
  '404': {
    ingestion_not_found: {
      summary: "No such ingestion (or another tenant's)",
      value: { detail: 'Ingestion not found', error_code: 'INGESTION_NOT_FOUND' },
    },
  },
  '409': {
    run_in_progress: {
      summary: 'A run is in progress',
      value: {
        detail: `Cannot ${title.toLowerCase()} while an operation runs on this ingestion`,
        error_code: 'RUN_IN_PROGRESS',
        current_run_id: runId,
        help: 'Wait for the current run to complete or cancel it first',
      },
    },
  },
});

const partialFailure = {
  status: 'partial_failure',
  detail: 'Some operations did not complete: run_triggered is failing',
  error_code: 'PARTIAL_FAILURE',
  message: 'Some operations failed',
  ingestion_id: ingestionId,
  operation_id: operationId,
  operation_url: `/api/v1/operations/${operationId}`,
  timestamp: '2025-01-05T10:30:00Z',
  // The failing step is run_triggered: no run exists yet.
  run_id: null,
  operations: [
    tableDropped,
    filesCleared,
    {
      operation: 'run_triggered',
      status: 'failed',
      timestamp: '2025-01-05T10:30:03Z',
      details: {},
      error: 'a backing service (the state database, Temporal or the store) is failing; the step is retried',
      error_code: 'DEPENDENCY_UNAVAILABLE',
    },
  ],
  impact: fullImpact,
  recovery: {
    message:
      'table dropped, processed files cleared; run_triggered is being retried and the operation completes by itself when the fault clears',
    action: `Follow GET /api/v1/operations/${operationId}; nothing needs to be repeated`,
    state: 'table dropped, processed files cleared',
  },
};

const tableDeleted = `Current table ${table} (450.2 GB, 12,450,000 rows) will be deleted`;
const fullRefreshWarnings = [
  'This operation will reprocess ALL 1,247 files (450.2 GB)',
  'HIGH COST OPERATION: Estimated $125.50',
  'LARGE OPERATION: Processing 1,247 files',
  tableDeleted,
];

const fullRefresh: OperationExamples = {
  request: {
    refresh: { summary: 'Full refresh', value: { confirm: true, auto_run: true, dry_run: false } },
    preview: { summary: 'Preview first (dry run)', value: { confirm: true, dry_run: true } },
    swap: {
      summary: "Seed 004's atomic swap: readers keep the old table until the new one is loaded",
      value: { confirm: true, strategy: 'swap', grace_period_seconds: 60 },
    },
  },
  responses: {
    '202': {
      accepted: {
        summary: 'Accepted: table dropped, history cleared, run triggered',
        value: {
          ...started('Full refresh'),
          operations: [tableDropped, filesCleared, runTriggered('2025-01-05T10:30:03Z')],
          impact: fullImpact,
          warnings: fullRefreshWarnings,
          notes: [],
        },
      },
    },
    '200': {
      dry_run: {
        summary: 'Dry run: what would happen',
        value: {
          ...dryRun('full-refresh'),
          would_perform: [
            tableToDrop,
            {
              operation: 'processed_files_cleared',
              details: { files_to_clear: 1247, date_range: '2024-01-01 to 2025-01-04' },
            },
            {
              operation: 'run_triggered',
              details: { files_to_process: 1247, new_files_only: false, data_size_gb: 450.2 },
            },
          ],
          impact: fullImpact,
          warnings: fullRefreshWarnings,
          notes: [],
        },
      },
    },
    ...refreshErrors('Full refresh'),
    '500': {
      partial_failure: {
        summary: 'A step keeps failing: what was done, and how it recovers',
        value: partialFailure,
      },
    },
  },
};

const freshStart: OperationExamples = {
  request: {
    fresh_start: { summary: 'Fresh start', value: { confirm: true, auto_run: true, dry_run: false } },
    preview: { summary: 'Preview first (dry run)', value: { confirm: true, dry_run: true } },
  },
  responses: {
    '202': {
      accepted: {
        summary: 'Accepted: table dropped, run triggered over new files',
        value: {
          ...started('Fresh start'),
          operations: [tableDropped, runTriggered('2025-01-05T10:30:02Z')],
          impact: freshImpact,
          warnings: [tableDeleted],
          notes: [
            'Table dropped and recreated',
            'Only NEW files (added since last run) will be processed: 23',
            'Processed file history preserved (1,247 files remain marked as processed)',
          ],
        },
      },
    },
    '200': {
      dry_run: {
        summary: 'Dry run: only new files would load',
        value: {
          ...dryRun('fresh-start'),
          would_perform: [
            tableToDrop,
            {
              operation: 'run_triggered',
              details: { files_to_process: 23, new_files_only: true, data_size_gb: 8.5 },
            },
          ],
          impact: freshImpact,
          warnings: [tableDeleted],
          notes: [
            'Table dropped and recreated',
            'Only NEW files (added since last run) will be processed: 23',
            'Processed file history preserved (1,247 files remain marked as processed)',
          ],
        },
      },
    },
    ...refreshErrors('Fresh start'),
  },
};

/** A drop loads nothing: every file of the history is skipped. */
const nothingLoaded = {
  files_to_process: 0,
  files_skipped: 1247,
  estimated_data_size_bytes: 0,
  estimated_data_size_gb: 0,
  estimated_cost_usd: 0,
  estimated_duration_minutes: 0,
};
const dropNotes = [
  'Processed file history NOT affected (1,247 files still marked as processed)',
  'No ingestion run triggered',
  'Table will be recreated on next run',
];
const dropTable: OperationExamples = {
  request: { drop: { summary: 'Drop the table', value: { confirm: true } } },
  responses: {
    '200': {
      dropped: {
        summary: 'Table dropped',
        value: {
          status: 'success',
          message: 'Drop table completed successfully',
          ingestion_id: ingestionId,
          operation_id: operationId,
          operation_url: `/api/v1/operations/${operationId}`,
          timestamp: '2025-01-05T10:30:00Z',
          run_id: null,
          operations: [tableDropped],
          details: tableDropped.details,
          impact: nothingLoaded,
          warnings: [tableDeleted],
          notes: dropNotes,
        },
      },
      did_not_exist: {
        summary: 'Table did not exist (not an error: idempotent)',
        value: {
          status: 'success',
          message: 'Drop table completed successfully',
          ingestion_id: ingestionId,
          operation_id: operationId,
          operation_url: `/api/v1/operations/${operationId}`,
          timestamp: '2025-01-05T10:30:00Z',
          run_id: null,
          operations: [{ ...tableDropped, details: { table_name: table, table_existed: false } }],
          details: { table_name: table, table_existed: false },
          impact: nothingLoaded,
          warnings: [],
          notes: dropNotes,
        },
      },
    },
    ...refreshErrors('Drop table'),
  },
};

// Seed 004: POST /refresh. `connection_id` is our string id (the contract).
const connectionId = 'conn-5';
const databaseRefresh: OperationExamples = {
  request: {
    schema_all: { summary: 'Schema refresh of every connection', value: {} },
    schema_connection: {
      summary: 'Schema refresh of one connection',
      value: { connection_id: connectionId },
    },
    data_table: {
      summary: 'Data refresh of one table',
      value: { connection_id: connectionId, schema_name: 'public', table_name: 'users', data: true },
    },
    data_connection: {
      summary: 'Data refresh of every table of a connection',
      value: { connection_id: connectionId, data: true },
    },
  },
  responses: {
    '200': {
      schema: {
        summary: 'Schema refresh',
        value: {
          connections_refreshed: 3,
          tables_discovered: 45,
          tables_added: 2,
          tables_removed: 1,
          tables_modified: 3,
        },
      },
      table: {
        summary: 'Table data refresh',
        value: {
          connection_id: connectionId,
          schema_name: 'public',
          table_name: 'users',
          rows_synced: 15000,
          duration_ms: 2340,
        },
      },
      connection: {
        summary: 'Connection data refresh, one table failed',
        value: {
          connection_id: connectionId,
          tables_refreshed: 12,
          tables_failed: 1,
          total_rows: 150000,
          duration_ms: 45000,
          errors: [{ schema_name: 'public', table_name: 'large_table', error: 'Connection timeout' }],
        },
      },
    },
    '202': {
      running: {
        summary:
          'A data refresh still running after REFRESH_RESPONSE_WAIT_MS: its operation (whose result is the 200’s body once it ends) and its Temporal workflow',
        value: {
          status: 'running',
          operation_id: operationId,
          operation_url: `/api/v1/operations/${operationId}`,
          workflow_id: `connection/${connectionId}/data-refresh`,
        },
      },
    },
    '400': {
      validation: {
        summary: 'schema_name without connection_id',
        value: {
          detail: 'Invalid body: schema_name requires connection_id',
          error_code: 'VALIDATION_ERROR',
          field: 'schema_name',
        },
      },
    },
    '404': {
      connection_not_found: {
        summary: "No such connection (or another tenant's)",
        value: { detail: 'Connection not found', error_code: 'CONNECTION_NOT_FOUND' },
      },
    },
  },
};

// Seed 001's Phase 2 request shapes; `confirm` added where the contract requires it for a refresh.
const batchAccepted = (id: string) => ({
  ingestion_id: id,
  status: 'accepted',
  operation_id: `op-${id}`,
  run_id: `run-${id}`,
  impact: fullImpact,
  warnings: fullRefreshWarnings,
});
const batchRefresh: OperationExamples = {
  request: {
    batch: {
      summary: 'Full refresh of three ingestions',
      value: { ingestion_ids: ['ing-1', 'ing-2', 'ing-3'], operation: 'full_refresh', confirm: true },
    },
    preview: {
      summary: 'Preview the whole batch first (dry run)',
      value: {
        ingestion_ids: ['ing-1', 'ing-2', 'ing-3'],
        operation: 'full_refresh',
        confirm: true,
        dry_run: true,
      },
    },
    dependent: {
      summary: 'Dependent tables: one at a time in the listed order, stop at the first failure',
      value: {
        ingestion_ids: ['ing-1', 'ing-2'],
        operation: 'fresh_start',
        confirm: true,
        order: 'listed',
        stop_on_error: true,
      },
    },
  },
  responses: {
    '202': {
      one_busy_one_missing: {
        summary: 'One refreshed, one busy, one not found: each in its entry',
        value: {
          batch_id: 'op_2b7c9d4e6f8g0h1j',
          operation_id: 'op_2b7c9d4e6f8g0h1j',
          operation_url: '/api/v1/operations/op_2b7c9d4e6f8g0h1j',
          workflow_id: 'tenant/tenant_acme/batch-refresh/op_2b7c9d4e6f8g0h1j',
          status: 'partial_failure',
          operation: 'full_refresh',
          timestamp: '2025-01-05T10:30:00Z',
          entries: [
            batchAccepted('ing-1'),
            {
              ingestion_id: 'ing-2',
              status: 'failed',
              error: {
                error_code: 'RUN_IN_PROGRESS',
                detail: 'Cannot full refresh while an operation runs on this ingestion',
              },
            },
            {
              ingestion_id: 'ing-3',
              status: 'failed',
              error: { error_code: 'INGESTION_NOT_FOUND', detail: 'Ingestion not found' },
            },
          ],
          summary: {
            total: 3,
            started: 1,
            failed: 2,
            cancelled: 0,
            impact: fullImpact,
            warnings: [
              ...fullRefreshWarnings.map((w) => `ing-1: ${w}`),
              '2 of 3 ingestions could not be refreshed',
            ],
          },
        },
      },
    },
  },
};
const factsExample = {
  file_count: 1247,
  new_file_count: 23,
  new_bytes: 9126805504,
  failed_file_count: 0,
  hours_since_last_success: 26.5,
  table_row_count: 12450000,
  schema_changed: false,
};
const refreshIf: OperationExamples = {
  request: {
    condition: {
      summary: 'Full refresh only if more than 100 files',
      value: { condition: 'file_count > 100', operation: 'full_refresh', confirm: true },
    },
    changed: {
      summary: 'Swap in a rebuilt table only when many new files came and the schema held',
      value: {
        condition: 'new_file_count > 100 and not schema_changed',
        operation: 'full_refresh',
        strategy: 'swap',
        confirm: true,
      },
    },
  },
  responses: {
    '202': {
      held: {
        summary: 'The condition held: the full refresh was accepted',
        value: {
          condition: 'file_count > 100',
          result: true,
          facts: factsExample,
          started: true,
          operation: {
            ...started('Full refresh'),
            operations: [tableDropped, filesCleared, runTriggered('2025-01-05T10:30:03Z')],
            impact: fullImpact,
            warnings: fullRefreshWarnings,
            notes: [],
          },
        },
      },
    },
    '200': {
      not_held: {
        summary: 'The condition did not hold: nothing was done',
        value: {
          condition: 'new_file_count > 100',
          result: false,
          facts: factsExample,
          started: false,
        },
      },
    },
    '400': {
      bad_condition: {
        summary: 'A mistake in the condition, with its position',
        value: {
          detail:
            'Invalid body: condition: at position 11: "=" is not an operator; write "==" to test equality',
          error_code: 'VALIDATION_ERROR',
          field: 'condition',
          position: 11,
          help: 'See the facts and the grammar in the description of POST /ingestions/{id}/refresh-if',
        },
      },
      ...refreshErrors('Full refresh')['400'],
    },
    '404': refreshErrors('Full refresh')['404'],
    '409': refreshErrors('Full refresh')['409'],
  },
};
const refreshRange: OperationExamples = {
  request: {
    january: {
      summary: 'Reprocess the files of January',
      value: { start_date: '2025-01-01', end_date: '2025-01-31', operation: 'reprocess', confirm: true },
    },
  },
  responses: refreshErrors('Reprocess'),
};
// Seed 001's "Scheduled Refresh" and "Selective Refresh" as this service has them: a schedule of its
// own route (not a field of the ingestion), and a reprocess over a modification-time window.
const refreshSchedule: OperationExamples = {
  request: {
    nightly: {
      summary: 'Full refresh every night at 02:00',
      value: { cron: '0 2 * * *', timezone: 'UTC', operation: 'full_refresh' },
    },
  },
};
const reprocess: OperationExamples = {
  request: {
    january: {
      summary: 'Reprocess the files of January',
      value: { modified_from: '2025-01-01T00:00:00Z', modified_to: '2025-02-01T00:00:00Z', confirm: true },
    },
  },
  responses: refreshErrors('Reprocess'),
};

/** By `METHOD path` exactly as the document names them. */
export const seedExamples: Record<string, OperationExamples> = {
  'POST /api/v1/ingestions/{id}/full-refresh': fullRefresh,
  'POST /api/v1/ingestions/{id}/refresh/full': fullRefresh,
  'POST /api/v1/ingestions/{id}/fresh-start': freshStart,
  'POST /api/v1/ingestions/{id}/refresh/new-only': freshStart,
  'DELETE /api/v1/ingestions/{id}/table': dropTable,
  'POST /api/v1/refresh': databaseRefresh,
  'POST /api/v1/batch-refresh': batchRefresh,
  'POST /api/v1/ingestions/{id}/refresh-if': refreshIf,
  'POST /api/v1/ingestions/{id}/refresh-range': refreshRange,
  'PUT /api/v1/ingestions/{id}/schedule': refreshSchedule,
  'POST /api/v1/ingestions/{id}/reprocess': reprocess,
};

type MediaType = { examples?: Record<string, unknown>; example?: unknown };

/** Adds `examples` to a JSON media type; a route's own examples win over ours. */
function addTo(media: MediaType | undefined, examples: Record<string, Example>): boolean {
  if (!media || media.example !== undefined) return false;
  media.examples = { ...examples, ...media.examples };
  return true;
}

/** Attaches the examples of every route the document has; returns the `METHOD path status` attached. */
export function attachSeedExamples(doc: { paths?: Record<string, unknown> }): string[] {
  const attached: string[] = [];
  for (const [key, examples] of Object.entries(seedExamples)) {
    const [method, path] = key.split(' ') as [string, string];
    const op = (doc.paths?.[path] as Record<string, unknown> | undefined)?.[method.toLowerCase()] as
      | {
          requestBody?: { content?: Record<string, MediaType> };
          responses?: Record<string, { content?: Record<string, MediaType> }>;
        }
      | undefined;
    if (!op) continue;
    if (examples.request && addTo(op.requestBody?.content?.['application/json'], examples.request))
      attached.push(`${key} request`);
    for (const [status, byName] of Object.entries(examples.responses ?? {})) {
      if (addTo(op.responses?.[status]?.content?.['application/json'], byName))
        attached.push(`${key} ${status}`);
    }
  }
  return attached;
}
