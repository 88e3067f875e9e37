import { Context } from '@temporalio/activity';
import picomatch from 'picomatch';
import { previewSwap, type SwapPreview } from '../destination/carry-over.js';
import { type TableStats, tableStats } from '../destination/table.js';
import { countQueueable, historySummary } from '../ledger/processed-files.js';
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
    for await (const page of store.list({ bucket: source.bucket, prefix: source.prefix })) {
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
      out.filesTotal += files.length;
      out.bytesTotal += files.reduce((s, f) => s + f.size, 0);
      out.filesNew += queueable.files;
      out.bytesNew += queueable.bytes;
      Context.current().heartbeat(out.filesTotal);
    }
    const history = await historySummary(sql, input.ingestionId);
    return {
      ...out,
      historyFiles: history.files,
      historyOldest: history.oldest,
      historyNewest: history.newest,
      table: await tableStats(sql, ctx.destination),
      swap: (await previewSwap(sql, ctx.destination)) ?? undefined,
    };
  };
}
