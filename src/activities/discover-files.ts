import { ApplicationFailure, Context } from '@temporalio/activity';
import picomatch from 'picomatch';
import type { FileMeta } from '../storage/index.js';
import { SourceConfigError } from '../storage/index.js';
import type { ActivityDeps } from './deps.js';
import { loadIngestionContext } from './ingestion-context.js';

export interface DiscoverFilesInput {
  runId: string;
  ingestionId: string;
  scope: string;
}

export interface DiscoverFilesResult {
  filesDiscovered: number;
  filesQueued: number;
}

/**
 * Lists the source page by page and merges each page into `processed_files` with one set-based
 * upsert: new paths, paths whose ETag changed and failed files under the retry limit are queued for
 * this run; the rest are left alone. The listing cursor commits with each page, so a retried
 * activity resumes where the last committed page ended and never counts a page twice. Nothing of the
 * listing is held in memory beyond one page, nor returned to the workflow.
 */
export function makeDiscoverFiles({ sql, stores, fileMaxRetries }: ActivityDeps) {
  return async function discoverFiles(input: DiscoverFilesInput): Promise<DiscoverFilesResult> {
    const ctx = await loadIngestionContext(sql, stores, input.ingestionId);
    const { source, store } = ctx;
    const [run] = await sql<{ cursor: string | null; done: boolean }[]>`
      select discovery_cursor as cursor, discovery_done as done from autoloader.runs where id = ${input.runId}`;
    if (!run) throw ApplicationFailure.nonRetryable(`run ${input.runId} not found`, 'RunNotFound');

    if (!run.done) {
      const matches = picomatch(source.pattern, { dot: false });
      const since = source.since ? new Date(source.since) : undefined;
      const keep = (f: FileMeta) =>
        matches(f.key.slice(source.prefix.length)) && (!since || !f.modifiedAt || f.modifiedAt >= since);
      try {
        for await (const page of store.list({
          bucket: source.bucket,
          prefix: source.prefix,
          startAfter: run.cursor ?? undefined,
        })) {
          const last = page.at(-1);
          if (!last) continue;
          const files = page.filter(keep);
          await sql.begin(async (tx) => {
            if (files.length > 0) {
              await tx`
                insert into autoloader.processed_files as p
                  (ingestion_id, scope, run_id, file_path, file_size_bytes, file_modified_at, file_etag, status)
                select ${input.ingestionId}, ${input.scope}, ${input.runId}, u.path, u.size, u.mtime, u.etag, 'DISCOVERED'
                from unnest(${files.map((f) => store.uri(source.bucket, f.key))}::text[],
                            ${files.map((f) => f.size)}::bigint[],
                            ${files.map((f) => f.modifiedAt?.toISOString() ?? null)}::timestamptz[],
                            ${files.map((f) => f.etag)}::text[]) as u(path, size, mtime, etag)
                on conflict (ingestion_id, scope, file_path) do update set
                  run_id = excluded.run_id,
                  status = 'DISCOVERED',
                  claimed_by = null,
                  file_size_bytes = excluded.file_size_bytes,
                  file_modified_at = excluded.file_modified_at,
                  file_etag = excluded.file_etag,
                  retry_count = case when p.file_etag is distinct from excluded.file_etag then 0 else p.retry_count end,
                  discovered_at = now(),
                  updated_at = now()
                where (p.status = 'SUCCESS' and p.file_etag is distinct from excluded.file_etag)
                   or (p.status = 'FAILED' and (p.retry_count < ${fileMaxRetries} or p.file_etag is distinct from excluded.file_etag))
                   or (p.status in ('DISCOVERED', 'PROCESSING') and p.run_id is distinct from excluded.run_id)`;
            }
            await tx`
              update autoloader.runs
              set discovery_cursor = ${last.key}, files_discovered = files_discovered + ${files.length}
              where id = ${input.runId}`;
          });
          Context.current().heartbeat({ cursor: last.key });
        }
      } catch (err) {
        if (err instanceof SourceConfigError)
          throw ApplicationFailure.nonRetryable(err.message, 'SourceConfigError');
        throw err;
      }
      await sql`update autoloader.runs set discovery_done = true where id = ${input.runId}`;
    }

    const [counts] = await sql<{ discovered: number; queued: number }[]>`
      select r.files_discovered as discovered,
             (select count(*)::int from autoloader.processed_files
               where ingestion_id = ${input.ingestionId} and run_id = ${input.runId} and status in ('DISCOVERED', 'PROCESSING')) as queued
      from autoloader.runs r where r.id = ${input.runId}`;
    return { filesDiscovered: counts?.discovered ?? 0, filesQueued: counts?.queued ?? 0 };
  };
}
