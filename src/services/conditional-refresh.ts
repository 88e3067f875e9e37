import type { SourceImpact } from '../activities/estimate-impact.js';
import { AppError } from '../domain/errors.js';
import {
  type Condition,
  ConditionError,
  describeCondition,
  evaluateCondition,
  type Facts,
  parseCondition,
} from '../refresh/condition.js';
import { refreshModes } from '../refresh/modes.js';
import type { ServiceDeps } from './deps.js';
import { refuseIfBusy } from './operations.js';
import { estimateSource, type RefreshRequest, type RefreshResult, requestRefresh } from './refresh.js';

/** A condition the caller wrote wrongly: 400 VALIDATION_ERROR naming the field and the position. */
export function parseConditionField(text: string): Condition {
  try {
    return parseCondition(text);
  } catch (err) {
    if (!(err instanceof ConditionError)) throw err;
    throw new AppError('VALIDATION_ERROR', `Invalid body: condition: ${err.message}`, {
      field: 'condition',
      position: err.position,
      help: 'See the facts and the grammar in the description of POST /ingestions/{id}/refresh-if',
    });
  }
}

/**
 * The facts a condition is evaluated against, from our own state: the source listing compared with
 * the file history (the same discovery a dry run uses, in a worker), the file history, the runs, the
 * destination table and the schema history.
 */
export async function gatherFacts(
  deps: Pick<ServiceDeps, 'sql' | 'temporal' | 'taskQueue'>,
  ingestionId: string,
): Promise<Facts> {
  const src: SourceImpact = await estimateSource(deps, ingestionId);
  const [row] = await deps.sql<
    { failed: number; secondsSinceSuccess: number | null; schemaChanged: boolean }[]
  >`
    with last_refresh as (
      select max(coalesce(finished_at, created_at)) as at from autoloader.operations
      where ingestion_id = ${ingestionId} and type in ('full_refresh', 'fresh_start') and status = 'success'
    )
    select
      (select count(*)::int from autoloader.processed_files
        where ingestion_id = ${ingestionId} and scope = 'live' and status = 'FAILED') as failed,
      (select extract(epoch from now() - max(coalesce(finished_at, started_at)))::float8
        from autoloader.runs where ingestion_id = ${ingestionId} and status = 'SUCCESS') as "secondsSinceSuccess",
      -- Since the last finished full refresh or fresh start a new set of columns was loaded; with no
      -- refresh yet, since the first load (more than one schema version).
      (case when (select at from last_refresh) is null
        then (select count(*) > 1 from autoloader.schema_versions where ingestion_id = ${ingestionId})
        else exists (select 1 from autoloader.schema_versions
          where ingestion_id = ${ingestionId} and created_at > (select at from last_refresh))
      end) as "schemaChanged"`;
  const seconds = row?.secondsSinceSuccess ?? null;
  return {
    file_count: src.filesTotal,
    new_file_count: src.filesNew,
    new_bytes: src.bytesNew,
    failed_file_count: row?.failed ?? 0,
    hours_since_last_success: seconds === null ? null : Math.round((seconds / 3600) * 1000) / 1000,
    table_row_count: src.table.table_existed ? (src.table.row_count ?? 0) : null,
    schema_changed: row?.schemaChanged ?? false,
  };
}

export interface ConditionalRefreshResult {
  /** The condition in canonical form. */
  condition: string;
  result: boolean;
  facts: Facts;
  /** The refresh's own answer when the condition held (a dry run's preview, or the started operation). */
  refresh?: RefreshResult;
}

/** Seed 001's conditional refresh: the refresh runs, through the same use case, only if the condition holds. */
export async function requestConditionalRefresh(
  deps: ServiceDeps,
  req: RefreshRequest & { condition: Condition },
): Promise<ConditionalRefreshResult> {
  const { condition, ...refresh } = req;
  // A busy ingestion could not be refreshed whatever the facts say, and they are in flux while an
  // operation runs: refused first, as a single refresh is (a dry run still evaluates).
  if (!req.dryRun) {
    const title = refreshModes[req.type].title.toLowerCase();
    await refuseIfBusy(
      deps.temporal,
      req.ingestionId,
      `Cannot ${title} while an operation runs on this ingestion`,
    );
  }
  const facts = await gatherFacts(deps, req.ingestionId);
  const result = evaluateCondition(condition, facts);
  return {
    condition: describeCondition(condition),
    result,
    facts,
    ...(result ? { refresh: await requestRefresh(deps, refresh) } : {}),
  };
}
