import { createHash } from 'node:crypto';
import { Context } from '@temporalio/activity';
import picomatch from 'picomatch';
import { columnsOf, previewSwap, type SwapPreview } from '../destination/carry-over.js';
import { type TableStats, tableStats } from '../destination/table.js';
import { countQueueable, historySummary } from '../ledger/processed-files.js';
import { readAhead } from '../lib/read-ahead.js';
import type { PlanSnapshot } from '../refresh/plan.js';
import type { ActivityDeps } from './deps.js';
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
  /**
   * What a swap full refresh would carry over from the table and what would refuse it (read from the
   * catalog, so a dry run can say so before anything is loaded); absent without a table.
   */
  swap?: SwapPreview;
  /** What a dry run's plan records, and its execution compares (absent for a reprocess estimate). */
  snapshot?: PlanSnapshot;
}

/**
 * Real discovery for impact estimates: lists the source (sizes from the listing) and compares each
 * page with the history, without writing anything.
 */
export function makeEstimateImpact({ sql, stores, fileMaxRetries }: ActivityDeps) {
  return async function estimateImpact(input: { ingestionId: string }): Promise<SourceImpact> {
    const ctx = await loadIngestionContext(sql, input.ingestionId);
    const { source } = ctx;
    const store = await stores(ctx.connection);
    const matches = picomatch(source.pattern, { dot: false });
    const since = source.since ? new Date(source.since) : undefined;
    const out = { filesTotal: 0, bytesTotal: 0, filesNew: 0, bytesNew: 0 };
    const keys = createHash('sha256');
    let newest: Date | null = null;
    for await (const page of readAhead(store.list({ bucket: source.bucket, prefix: source.prefix }))) {
      const files = page.filter(
        (f) =>
          matches(f.key.slice(source.prefix.length)) && (!since || !f.modifiedAt || f.modifiedAt >= since),
      );
      if (files.length === 0) continue;
      const queueable = await countQueueable(sql, {
        ingestionId: input.ingestionId,
        files: files.map((f) => ({ ...f, path: store.uri(source.bucket, f.key) })),
        maxRetries: fileMaxRetries,
      });
      for (const f of files) {
        keys.update(`${f.key}\0${f.etag ?? ''}\0${f.size}\n`);
        if (f.modifiedAt && (!newest || f.modifiedAt > newest)) newest = f.modifiedAt;
      }
      out.filesTotal += files.length;
      out.bytesTotal += files.reduce((s, f) => s + f.size, 0);
      out.filesNew += queueable.files;
      out.bytesNew += queueable.bytes;
      Context.current().heartbeat(out.filesTotal);
    }
    const history = await historySummary(sql, input.ingestionId);
    const table = await tableStats(sql, ctx.destination);
    const [byStatus, columns] = await Promise.all([
      sql<{ status: string; n: number }[]>`
        select status, count(*)::int as n from autoloader.processed_files
        where ingestion_id = ${input.ingestionId} and scope = 'live' group by status order by status`,
      columnsOf(sql, ctx.destination),
    ]);
    return {
      ...out,
      historyFiles: history.files,
      historyOldest: history.oldest,
      historyNewest: history.newest,
      table,
      swap: (await previewSwap(sql, ctx.destination)) ?? undefined,
      snapshot: {
        source: {
          files: out.filesTotal,
          bytes: out.bytesTotal,
          newest_modified_at: newest?.toISOString() ?? null,
          keys_hash: keys.digest('hex'),
        },
        history: Object.fromEntries(byStatus.map((r) => [r.status, r.n])),
        table: {
          row_count: table.row_count ?? null,
          columns: [...columns].map(([name, type]) => `${name} ${type}`),
        },
      },
    };
  };
}
