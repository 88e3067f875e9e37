import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, jsonLines, type RunBody, startHarness } from '../helpers/harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

describe('selective reprocess (seed 000 Phase 2)', () => {
  it('replaces only the selected files’ rows and leaves every other row untouched', async () => {
    const { id, table } = await h.createIngestion(
      { 'a-1.jsonl': jsonLines(0, 100), 'a-2.jsonl': jsonLines(100, 100), 'b-1.jsonl': jsonLines(200, 100) },
      {},
      'rp',
    );
    const first = await h.runAndWait(id);
    const snapshot = async () =>
      h.sql.unsafe<{ file: string; n: number; run: string; at: string }[]>(
        `select regexp_replace(_source_file, '.*/', '') as file, count(*)::int as n, min(_run_id) as run,
                min(_ingested_at)::text as at
         from raw.${table} group by 1 order by 1`,
      );
    const before = await snapshot();

    const dry = await h.api<{ impact: { files_to_process: number }; would_perform: { operation: string }[] }>(
      'POST',
      `/api/v1/ingestions/${id}/reprocess`,
      { confirm: true, dry_run: true, pattern: 'a-*.jsonl' },
    );
    expect(dry.status).toBe(200);
    expect(dry.body.impact.files_to_process).toBe(2);
    expect(dry.body.would_perform.map((o) => o.operation)).toEqual(['rows_removed', 'run_triggered']);
    expect(await snapshot()).toEqual(before);

    const res = await h.api<{
      run_id: string;
      operations: { operation: string; details: Record<string, unknown> }[];
    }>('POST', `/api/v1/ingestions/${id}/reprocess`, { confirm: true, pattern: 'a-*.jsonl' });
    expect(res.status).toBe(202);
    expect(res.body.operations[0]).toMatchObject({
      operation: 'rows_removed',
      details: { files_selected: 2, rows_deleted: 200 },
    });
    await h.waitForIngestionIdle(id);

    const after = await snapshot();
    expect(after.map((r) => [r.file, r.n])).toEqual([
      ['a-1.jsonl', 100],
      ['a-2.jsonl', 100],
      ['b-1.jsonl', 100],
    ]);
    expect(after.find((r) => r.file === 'b-1.jsonl')).toEqual(before.find((r) => r.file === 'b-1.jsonl'));
    expect(after.filter((r) => r.file.startsWith('a-')).every((r) => r.run === res.body.run_id)).toBe(true);
    expect(before.every((r) => r.run === first.id)).toBe(true);
    const run = await h.api<RunBody>('GET', `/api/v1/runs/${res.body.run_id}`);
    expect(run.body).toMatchObject({ files_processed: 2, records_written: 200, files_skipped: 1 });
  });

  it('needs a selection and a confirmation', async () => {
    const { id } = await h.createIngestion({}, {}, 'rp2');
    const noConfirm = await h.api('POST', `/api/v1/ingestions/${id}/reprocess`, {
      pattern: '*',
    });
    expect(noConfirm.body).toMatchObject({ error_code: 'CONFIRMATION_REQUIRED' });
    const noSelection = await h.api('POST', `/api/v1/ingestions/${id}/reprocess`, {
      confirm: true,
    });
    expect(noSelection.body).toMatchObject({ error_code: 'VALIDATION_ERROR', field: 'pattern' });
  });
});
