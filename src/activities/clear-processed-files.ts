import type { ActivityDeps } from './deps.js';

export interface ClearProcessedFilesResult {
  filesCleared: number;
  oldestFile: string | null;
  newestFile: string | null;
}

/** Forgets which files were loaded, so the next run takes every file again (seed 001's "existing" endpoint). */
export function makeClearProcessedFiles({ sql }: ActivityDeps) {
  return async function clearProcessedFiles(input: {
    ingestionId: string;
  }): Promise<ClearProcessedFilesResult> {
    return sql.begin(async (tx) => {
      const [edges] = await tx<{ oldest: string | null; newest: string | null }[]>`
        select (array_agg(file_path order by file_modified_at asc nulls last, file_path))[1] as oldest,
               (array_agg(file_path order by file_modified_at desc nulls last, file_path desc))[1] as newest
        from autoloader.processed_files where ingestion_id = ${input.ingestionId} and scope = 'live'`;
      const deleted =
        await tx`delete from autoloader.processed_files where ingestion_id = ${input.ingestionId} and scope = 'live'`;
      return {
        filesCleared: deleted.count,
        oldestFile: edges?.oldest ?? null,
        newestFile: edges?.newest ?? null,
      };
    });
  };
}
