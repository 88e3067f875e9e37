import { Context } from '@temporalio/activity';
import picomatch from 'picomatch';
import type { ActivityDeps } from './deps.js';
import { type TableStats, tableStats } from './drop-table.js';
import { loadIngestionContext } from './ingestion-context.js';

export interface SourceImpact {
  /** Files matching the source now. */
  filesTotal: number;
  bytesTotal: number;
  /** Files a run would load given the current history (new, changed, failed under the limit). */
  filesNew: number;
  bytesNew: number;
  /** Rows in the processed-file history and their date range. */
  historyFiles: number;
  historyOldest: string | null;
  historyNewest: string | null;
  table: TableStats;
}

/**
 * Real discovery for impact estimates: lists the source (sizes from the listing) and compares each
 * page with the history, without writing anything.
 */
export function makeEstimateImpact({ sql, stores, fileMaxRetries }: ActivityDeps) {
  return async function estimateImpact(input: { ingestionId: string }): Promise<SourceImpact> {
    const ctx = await loadIngestionContext(sql, stores, input.ingestionId);
    const { source, store } = ctx;
    const matches = picomatch(source.pattern, { dot: false });
    const since = source.since ? new Date(source.since) : undefined;
    const out = { filesTotal: 0, bytesTotal: 0, filesNew: 0, bytesNew: 0 };
    for await (const page of store.list({ bucket: source.bucket, prefix: source.prefix })) {
      const files = page.filter(
        (f) =>
          matches(f.key.slice(source.prefix.length)) && (!since || !f.modifiedAt || f.modifiedAt >= since),
      );
      if (files.length === 0) continue;
      const [counts] = await sql<{ n: number; bytes: number }[]>`
        select count(*)::int as n, coalesce(sum(u.size), 0)::float8 as bytes
        from unnest(${files.map((f) => store.uri(source.bucket, f.key))}::text[],
                    ${files.map((f) => f.size)}::bigint[],
                    ${files.map((f) => f.etag)}::text[]) as u(path, size, etag)
        left join autoloader.processed_files p
          on p.ingestion_id = ${input.ingestionId} and p.scope = 'live' and p.file_path = u.path
        where p.id is null
           or (p.status = 'SUCCESS' and p.file_etag is distinct from u.etag)
           or (p.status = 'FAILED' and (p.retry_count < ${fileMaxRetries} or p.file_etag is distinct from u.etag))
           or p.status in ('DISCOVERED', 'PROCESSING')`;
      out.filesTotal += files.length;
      out.bytesTotal += files.reduce((s, f) => s + f.size, 0);
      out.filesNew += counts?.n ?? 0;
      out.bytesNew += counts?.bytes ?? 0;
      Context.current().heartbeat(out.filesTotal);
    }
    const [history] = await sql<{ n: number; oldest: string | null; newest: string | null }[]>`
      select count(*)::int as n,
             min(coalesce(file_modified_at, discovered_at))::date::text as oldest,
             max(coalesce(file_modified_at, discovered_at))::date::text as newest
      from autoloader.processed_files where ingestion_id = ${input.ingestionId} and scope = 'live'`;
    return {
      ...out,
      historyFiles: history?.n ?? 0,
      historyOldest: history?.oldest ?? null,
      historyNewest: history?.newest ?? null,
      table: await tableStats(sql, ctx.destination.schema, ctx.destination.table),
    };
  };
}
