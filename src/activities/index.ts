import { makeClearProcessedFiles } from './clear-processed-files.js';
import type { ActivityDeps } from './deps.js';
import { makeDiscoverFiles } from './discover-files.js';
import { makeFinishRun } from './finish-run.js';
import { makeProcessFiles } from './process-files.js';
import { makeStartRun } from './start-run.js';

export type { ActivityDeps } from './deps.js';

export function createActivities(deps: ActivityDeps) {
  return {
    startRun: makeStartRun(deps),
    discoverFiles: makeDiscoverFiles(deps),
    processFiles: makeProcessFiles(deps),
    finishRun: makeFinishRun(deps),
    clearProcessedFiles: makeClearProcessedFiles(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
