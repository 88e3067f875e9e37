import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import type { ConnectionCheck, TestTarget } from '../sources/kind.js';

/** Each check has its own deadline inside the activity; one attempt, no retries: a test reports, it does not wait. */
const { testConnection } = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { maximumAttempts: 1 },
});

export async function connectionTestWorkflow(input: {
  connectionId: string;
  target: TestTarget;
}): Promise<ConnectionCheck[]> {
  return testConnection(input);
}
