import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { workflowIds } from '../../src/temporal/ids.js';
import { suggestContinueAsNewAt } from '../global-setup.js';
import { type Harness, jsonLines, type RunBody, startHarness } from '../helpers/harness.js';

/**
 * Invariant 4: a run's history stays bounded whatever the file count. One file per activity makes
 * the history grow with the files; continue-as-new must cut it into executions of bounded length.
 */
let h: Harness;
beforeAll(async () => {
  h = await startHarness({ batchMaxFiles: 1, parallelism: 2 });
});
afterAll(async () => {
  await h?.close();
});

async function runOver(files: number) {
  const bucket = await h.createBucket();
  for (let i = 0; i < files; i += 25) {
    await Promise.all(
      Array.from({ length: Math.min(25, files - i) }, (_, j) =>
        h.putObject(bucket, `f${i + j}.jsonl`, jsonLines((i + j) * 2, 2)),
      ),
    );
  }
  const table = `hb_${bucket.replaceAll('-', '_')}`;
  const created = await h.api<{ id: string }>('POST', '/api/v1/ingestions', {
    name: table,
    connection_id: await h.createS3Connection(),
    source: { bucket, format: 'jsonl' },
    destination: `raw.${table}`,
  });
  const id = created.body.id;
  const run = (await h.runAndWait(id)) as RunBody & { id: string };
  expect(run).toMatchObject({ status: 'SUCCESS', files_processed: files, records_written: files * 2 });

  // The last execution still names the run (409 answers rely on it).
  expect((await h.client.workflow.getHandle(workflowIds.ingestion(id)).describe()).memo).toMatchObject({
    runId: run.id,
  });

  // Walk the chain back from the last execution: each one names the execution it continued.
  const lengths: number[] = [];
  let runId: string | undefined;
  do {
    const history = await h.client.workflow.getHandle(workflowIds.ingestion(id), runId).fetchHistory();
    lengths.push(history.events?.length ?? 0);
    runId =
      history.events?.[0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId || undefined;
  } while (runId);
  return lengths;
}

describe('run history', () => {
  it('stays under a fixed number of events per execution while the file count grows 10x', async () => {
    const small = await runOver(20);
    const large = await runOver(200);
    // One batch adds a handful of events; an execution stops taking batches once the server suggests
    // continue-as-new, and may finish the ones in flight (one per lane).
    const bound = suggestContinueAsNewAt + 40;
    expect(Math.max(...small)).toBeLessThan(bound);
    expect(Math.max(...large)).toBeLessThan(bound);
    expect(large.length).toBeGreaterThan(small.length);
  });
});
