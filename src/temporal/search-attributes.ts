import {
  defineSearchAttributeKey,
  type SearchAttributePair,
  SearchAttributeType,
  type TypedSearchAttributes,
} from '@temporalio/common';

/**
 * What the Temporal UI can filter and show our workflows by. Every run and operation of an
 * ingestion shares the workflow id `ingestion/<id>`; these tell them apart in the list and in
 * queries such as `AutoloaderIngestionId = "ing_…" AND ExecutionStatus = "Failed"`.
 *
 * They must be registered on the namespace: the dev servers we start register them
 * (`--search-attribute`), and the worker and the API add any missing one at start (a self-hosted
 * cluster); on Temporal Cloud add them with `tcld namespace search-attributes add`.
 */
export const searchAttributeKeys = {
  ingestionId: defineSearchAttributeKey('AutoloaderIngestionId', SearchAttributeType.KEYWORD),
  tenant: defineSearchAttributeKey('AutoloaderTenant', SearchAttributeType.KEYWORD),
  /** run, full_refresh, fresh_start, drop_table, reprocess, clear_processed_files, scheduled, pending_deletion, webhook_delivery */
  operation: defineSearchAttributeKey('AutoloaderOperation', SearchAttributeType.KEYWORD),
  runId: defineSearchAttributeKey('AutoloaderRunId', SearchAttributeType.KEYWORD),
  /** What started it: manual (a request), schedule, or the refresh operation that launched the run. */
  trigger: defineSearchAttributeKey('AutoloaderTrigger', SearchAttributeType.KEYWORD),
  /** A run's `paused` or `running`, set once it has been paused (POST /runs/{id}/pause), never before. */
  runState: defineSearchAttributeKey('AutoloaderRunState', SearchAttributeType.KEYWORD),
} as const;

export const searchAttributeNames = Object.values(searchAttributeKeys).map((k) => k.name);

/** `temporal server start-dev` arguments registering them. */
export const devServerSearchAttributeArgs = (): string[] =>
  searchAttributeNames.flatMap((name) => ['--search-attribute', `${name}=Keyword`]);

export interface WorkflowLabels {
  ingestionId?: string;
  tenantId?: string;
  operation?: string;
  runId?: string;
  trigger?: string;
}

/** The pairs for a workflow's labels (absent ones left out). */
export function searchAttributePairs(labels: WorkflowLabels): SearchAttributePair[] {
  const pairs: SearchAttributePair[] = [];
  const add = (key: (typeof searchAttributeKeys)[keyof typeof searchAttributeKeys], value?: string) => {
    if (value) pairs.push({ key, value });
  };
  add(searchAttributeKeys.ingestionId, labels.ingestionId);
  add(searchAttributeKeys.tenant, labels.tenantId);
  add(searchAttributeKeys.operation, labels.operation);
  add(searchAttributeKeys.runId, labels.runId);
  add(searchAttributeKeys.trigger, labels.trigger);
  return pairs;
}

/** A child's attributes: the parent's (ingestion, tenant), with its own operation, run and trigger. */
export function childSearchAttributes(
  parent: TypedSearchAttributes,
  labels: Omit<WorkflowLabels, 'ingestionId' | 'tenantId'>,
): TypedSearchAttributes {
  return parent.updateCopy(searchAttributePairs(labels));
}

/** How an operation type reads in a summary: `full_refresh` → `full refresh`. */
export const spoken = (operation: string) => operation.replaceAll('_', ' ');

/**
 * Adds the missing ones to the namespace through the operator service (a dev server or a
 * self-hosted cluster). Where that is not allowed (Temporal Cloud, a restricted role) it fails
 * saying how to add them: starting workflows with unregistered attributes would fail every run.
 */
export async function ensureSearchAttributes(
  connection: {
    operatorService: {
      listSearchAttributes(req: { namespace: string }): Promise<{
        customAttributes?: Record<string, unknown> | null;
      }>;
      addSearchAttributes(req: {
        namespace: string;
        searchAttributes: Record<string, number>;
      }): Promise<unknown>;
    };
  },
  namespace: string,
): Promise<string[]> {
  const listed = await connection.operatorService.listSearchAttributes({ namespace });
  const missing = searchAttributeNames.filter((name) => !(name in (listed.customAttributes ?? {})));
  if (missing.length === 0) return [];
  // IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
  const KEYWORD = 2;
  try {
    await connection.operatorService.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(missing.map((name) => [name, KEYWORD])),
    });
  } catch (err) {
    const how = missing
      .map(
        (name) =>
          `temporal operator search-attribute create --namespace ${namespace} --name ${name} --type Keyword`,
      )
      .join('; ');
    throw new Error(
      `the Temporal namespace ${namespace} lacks the search attributes ${missing.join(', ')} and they could not be added (${err instanceof Error ? err.message : String(err)}): add them with ${how} (Temporal Cloud: tcld namespace search-attributes add)`,
    );
  }
  return missing;
}
