import { proxyActivities } from '@temporalio/workflow';
import type { ClearProcessedFilesResult } from '../activities/clear-processed-files.js';
import type { Activities } from '../activities/index.js';
import { shortActivity } from './options.js';

const { clearProcessedFiles } = proxyActivities<Activities>(shortActivity);

/**
 * Clearing history is a mutating operation: it runs under the ingestion's workflow id like a run, so
 * it can never interleave with one.
 */
export async function clearProcessedFilesWorkflow(input: {
  ingestionId: string;
}): Promise<ClearProcessedFilesResult> {
  return clearProcessedFiles(input);
}
