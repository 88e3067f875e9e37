import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { workflowIds } from '../../src/temporal/ids.js';
import { type Harness, jsonLines, startHarness } from '../helpers/harness.js';

/**
 * Replays real histories against the current workflow code: a change that breaks determinism for
 * runs already in flight fails here instead of in production.
 */
let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

describe('workflow replay', () => {
  it('replays a run and a swap refresh (with its child run) deterministically', async () => {
    const files = Object.fromEntries([0, 1, 2].map((i) => [`r${i}.jsonl`, jsonLines(i * 10, 10)]));
    const { id } = await h.createIngestion(files, {}, 'rpl');
    const run = await h.runAndWait(id);
    const runHistory = await h.client.workflow.getHandle(workflowIds.ingestion(id)).fetchHistory();

    const refresh = await h.api<{ run_id: string }>('POST', `/api/v1/ingestions/${id}/full-refresh`, {
      confirm: true,
      strategy: 'swap',
      grace_period_seconds: 0,
    });
    expect(refresh.status).toBe(202);
    await h.waitForIngestionIdle(id);
    const refreshHistory = await h.client.workflow.getHandle(workflowIds.ingestion(id)).fetchHistory();
    const childHistory = await h.client.workflow
      .getHandle(`${workflowIds.ingestion(id)}/run/${refresh.body.run_id}`)
      .fetchHistory();

    const bundle = { workflowBundle: { codePath: inject('workflowBundlePath') } };
    expect(run.status).toBe('SUCCESS');
    await Worker.runReplayHistory(bundle, runHistory, workflowIds.ingestion(id));
    await Worker.runReplayHistory(bundle, refreshHistory, workflowIds.ingestion(id));
    await Worker.runReplayHistory(
      bundle,
      childHistory,
      `${workflowIds.ingestion(id)}/run/${refresh.body.run_id}`,
    );
  });
});
