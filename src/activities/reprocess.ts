import picomatch from 'picomatch';
import { deleteRowsOfFiles, tableStats } from '../destination/table.js';
import { forgetFiles, historyPage } from '../ledger/processed-files.js';
import { uriOf } from '../sources/index.js';
import type { ActivityDeps } from './deps.js';
import type { SourceImpact } from './estimate-impact.js';
import { loadIngestionContext } from './ingestion-context.js';

/** Which loaded files to reprocess: a glob below the source prefix and/or a modified-time range. */
export interface Selection {
  pattern?: string;
  modifiedFrom?: string;
  modifiedTo?: string;
}

interface Selected {
  ids: number[];
  paths: string[];
  bytes: number;
  historyFiles: number;
}

async function select(deps: ActivityDeps, ingestionId: string, selection: Selection): Promise<Selected> {
  const ctx = await loadIngestionContext(deps.sql, ingestionId);
  const base = uriOf(ctx.connection, ctx.source.bucket, ctx.source.prefix);
  const matches = selection.pattern ? picomatch(selection.pattern, { dot: false }) : () => true;
  const from = selection.modifiedFrom ? new Date(selection.modifiedFrom) : undefined;
  const to = selection.modifiedTo ? new Date(selection.modifiedTo) : undefined;
  const out: Selected = { ids: [], paths: [], bytes: 0, historyFiles: 0 };
  let after = 0;
  // Paged by id: the history can hold millions of files; only the selected ids are kept.
  for (;;) {
    const page = await historyPage(deps.sql, ingestionId, after, 10_000);
    if (page.length === 0) break;
    after = page.at(-1)!.id;
    out.historyFiles += page.length;
    for (const f of page) {
      const rel = f.path.startsWith(base) ? f.path.slice(base.length) : f.path;
      const inRange =
        (!from || (f.modified && f.modified >= from)) && (!to || (f.modified && f.modified < to));
      if (matches(rel) && inRange) {
        out.ids.push(f.id);
        out.paths.push(f.path);
        out.bytes += f.size;
      }
    }
  }
  return out;
}

/** Impact of a selective reprocess, from the file history (no listing needed). */
export function makeEstimateReprocess(deps: ActivityDeps) {
  return async function estimateReprocess(input: {
    ingestionId: string;
    selection: Selection;
  }): Promise<SourceImpact> {
    const ctx = await loadIngestionContext(deps.sql, input.ingestionId);
    const s = await select(deps, input.ingestionId, input.selection);
    return {
      filesTotal: s.historyFiles,
      bytesTotal: s.bytes,
      filesNew: s.ids.length,
      bytesNew: s.bytes,
      historyFiles: s.historyFiles,
      historyOldest: null,
      historyNewest: null,
      table: await tableStats(deps.sql, ctx.destination),
    };
  };
}

/**
 * Removes exactly the selected files' rows (by lineage) and their history in one transaction, so the
 * next run loads them again. Every other row stays untouched.
 */
export function makeRemoveSelectedFiles(deps: ActivityDeps) {
  return async function removeSelectedFiles(input: {
    ingestionId: string;
    selection: Selection;
  }): Promise<{ files_selected: number; rows_deleted: number }> {
    const ctx = await loadIngestionContext(deps.sql, input.ingestionId);
    const s = await select(deps, input.ingestionId, input.selection);
    return deps.sql.begin(async (tx) => {
      const stats = await tableStats(tx, ctx.destination);
      let rows = 0;
      for (let i = 0; i < s.paths.length; i += 5000) {
        if (stats.table_existed)
          rows += await deleteRowsOfFiles(tx, ctx.destination, s.paths.slice(i, i + 5000));
        await forgetFiles(tx, s.ids.slice(i, i + 5000));
      }
      return { files_selected: s.ids.length, rows_deleted: rows };
    });
  };
}
