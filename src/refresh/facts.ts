import type { SourceImpact } from '../activities/estimate-impact.js';
import type { Sql } from '../db/client.js';
import type { Facts } from './condition.js';

/**
 * The facts a condition is evaluated against (seed 001's conditional refresh), from our own state:
 * the source listing compared with the file history (`src`: the same discovery a dry run uses, made
 * in a worker), the file history, the runs, the destination table and the schema history. Used by
 * `POST /refresh-if` and by a refresh schedule's `refresh_if` ticks alike.
 */
export async function factsFrom(sql: Sql, ingestionId: string, src: SourceImpact): Promise<Facts> {
  const [row] = await sql<{ failed: number; secondsSinceSuccess: number | null; schemaChanged: boolean }[]>`
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
