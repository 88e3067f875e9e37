import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { temporal } from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { workflowIds } from '../../src/temporal/ids.js';
import { type Harness, jsonLines, startHarness } from '../helpers/harness.js';

/**
 * Replays real histories against the current workflow code: a change that breaks determinism for
 * runs already in flight fails here instead of in production. Two kinds: histories made just now
 * (the code agrees with itself), and histories recorded by earlier versions and committed under
 * tests/fixtures/histories (the code still agrees with workflows started before an upgrade).
 * `RECORD_HISTORIES=1` writes this version's histories there; record them when a release is cut,
 * and keep the old ones for as long as workflows of that version may still be running.
 */
const historiesDir = fileURLToPath(new URL('../fixtures/histories/', import.meta.url));
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

    if (process.env.RECORD_HISTORIES) {
      const stamp = new Date().toISOString().slice(0, 10);
      await mkdir(historiesDir, { recursive: true });
      for (const [name, history] of [
        ['run', runHistory],
        ['swap-refresh', refreshHistory],
        ['swap-refresh-run', childHistory],
      ] as const)
        await writeFile(
          path.join(historiesDir, `${stamp}-${name}.history.bin`),
          temporal.api.history.v1.History.encode(history).finish(),
        );
    }

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

  it('replays every history recorded by earlier versions (tests/fixtures/histories)', async () => {
    const files = (await readdir(historiesDir)).filter((f) => f.endsWith('.history.bin')).sort();
    // The committed set: a missing folder would make this test pass by replaying nothing.
    expect(files.length).toBeGreaterThanOrEqual(3);
    const bundle = { workflowBundle: { codePath: inject('workflowBundlePath') } };
    for (const file of files) {
      // Protobuf-encoded, as the server sends them: no JSON mapping to drift between SDK versions.
      const history = temporal.api.history.v1.History.decode(await readFile(path.join(historiesDir, file)));
      await Worker.runReplayHistory(bundle, history, `fixture/${file}`);
    }
  });
});
