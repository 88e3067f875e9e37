import { clearHistory } from '../ledger/processed-files.js';
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
    return sql.begin((tx) => clearHistory(tx, input.ingestionId));
  };
}
