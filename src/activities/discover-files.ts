import { ApplicationFailure, Context } from '@temporalio/activity';
import picomatch from 'picomatch';
import { countQueued, queueListed } from '../ledger/processed-files.js';
import { readAhead } from '../lib/read-ahead.js';
import type { FileMeta } from '../sources/index.js';
import { SourceConfigError, sourceConfigAdvice } from '../sources/index.js';
import type { ActivityDeps } from './deps.js';
import { loadIngestionContext } from './ingestion-context.js';

export interface DiscoverFilesInput {
  runId: string;
  ingestionId: string;
  scope: string;
  /**
   * A refresh's snapshot (ISO 8601): files last modified after it arrived while the refresh ran,
   * and are left for the next run (not recorded, so it finds them new).
   */
  modifiedBefore?: string;
}

export interface DiscoverFilesResult {
  filesDiscovered: number;
  filesQueued: number;
}

/**
 * Lists the source page by page and merges each page into `processed_files` with one set-based
 * statement: new paths, paths whose ETag changed and failed files under the retry limit are queued
 * for this run; the rest are only compared, never written (see queueListed). The listing cursor
 * commits with each page, so a retried activity resumes where the last committed page ended and never
 * counts a page twice. Nothing of the listing is held in memory beyond two pages (the one merged and
 * the next, listed meanwhile), nor returned to the workflow.
 */
export function makeDiscoverFiles({ sql, stores, fileMaxRetries }: ActivityDeps) {
  return async function discoverFiles(input: DiscoverFilesInput): Promise<DiscoverFilesResult> {
    const ctx = await loadIngestionContext(sql, input.ingestionId);
    const { source } = ctx;
    const [run] = await sql<{ cursor: string | null; done: boolean }[]>`
      select discovery_cursor as cursor, discovery_done as done from autoloader.runs where id = ${input.runId}`;
    if (!run) throw ApplicationFailure.nonRetryable(`run ${input.runId} not found`, 'RunNotFound');

    if (!run.done) {
      const matches = picomatch(source.pattern, { dot: false });
      const since = source.since ? new Date(source.since) : undefined;
      const before = input.modifiedBefore ? new Date(input.modifiedBefore) : undefined;
      const keep = (f: FileMeta) =>
        matches(f.key.slice(source.prefix.length)) &&
        (!since || !f.modifiedAt || f.modifiedAt >= since) &&
        (!before || !f.modifiedAt || f.modifiedAt <= before);
      try {
        const store = await stores(ctx.connection);
        // The next page is listed while this one is merged: a run over unchanged files takes about
        // as long as listing them.
        const listing = store.list({
          bucket: source.bucket,
          prefix: source.prefix,
          startAfter: run.cursor ?? undefined,
        });
        for await (const page of readAhead(listing)) {
          const last = page.at(-1);
          if (!last) continue;
          const files = page.filter(keep);
          // Both statements go out together (one round trip); either failing rolls back the page.
          await sql.begin((tx) =>
            Promise.all([
              queueListed(tx, {
                ingestionId: input.ingestionId,
                scope: input.scope,
                runId: input.runId,
                files: files.map((f) => ({ ...f, path: store.uri(source.bucket, f.key) })),
                maxRetries: fileMaxRetries,
              }),
              tx`
                update autoloader.runs
                set discovery_cursor = ${last.key}, files_discovered = files_discovered + ${files.length}
                where id = ${input.runId}`,
            ]),
          );
          Context.current().heartbeat({ cursor: last.key });
        }
      } catch (err) {
        if (err instanceof SourceConfigError)
          throw ApplicationFailure.nonRetryable(
            sourceConfigAdvice(err, ctx.connection.id),
            'SourceConfigError',
          );
        throw err;
      }
      await sql`update autoloader.runs set discovery_done = true where id = ${input.runId}`;
    }

    const [counts] = await sql<{ discovered: number }[]>`
      select files_discovered as discovered from autoloader.runs where id = ${input.runId}`;
    return {
      filesDiscovered: counts?.discovered ?? 0,
      filesQueued: await countQueued(sql, input.ingestionId, input.runId),
    };
  };
}
