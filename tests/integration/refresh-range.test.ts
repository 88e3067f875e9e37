import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, jsonLines, type RunBody, startHarness } from '../helpers/harness.js';

/**
 * Seed 001's selective refresh, `POST /ingestions/{id}/refresh-range`: reprocess over whole UTC days,
 * both inclusive. MinIO sets LastModified itself, so the modification times the selection reads (the
 * file history's) are set here around the bounds.
 */
let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

interface RangeBody {
  status: string;
  run_id?: string | null;
  operations?: { operation: string; status: string; details: Record<string, unknown> }[];
  impact: { files_to_process: number };
  error_code?: string;
  field?: string;
}

async function ingestionAroundJanuary() {
  const files = { 'a.jsonl': jsonLines(0, 10), 'b.jsonl': jsonLines(10, 10), 'c.jsonl': jsonLines(20, 10) };
  const ing = await h.createIngestion(files, {}, 'rr');
  expect(await h.runAndWait(ing.id)).toMatchObject({ status: 'SUCCESS', files_processed: 3 });
  const modified: Record<string, string> = {
    'a.jsonl': '2025-01-01T00:00:00.000Z', // the first instant of start_date
    'b.jsonl': '2025-01-31T23:59:59.999Z', // the last instant of end_date
    'c.jsonl': '2025-02-01T00:00:00.000Z', // the day after
  };
  for (const [key, at] of Object.entries(modified)) {
    await h.sql`update autoloader.processed_files set file_modified_at = ${at}
      where ingestion_id = ${ing.id} and file_path like ${`%/${key}`}`;
  }
  return ing;
}

const range = (id: string, body: object) =>
  h.api<RangeBody>('POST', `/api/v1/ingestions/${id}/refresh-range`, {
    operation: 'reprocess',
    confirm: true,
    ...body,
  });

describe('refresh-range', () => {
  it('selects whole UTC days with both bounds inclusive (dry runs)', async () => {
    const { id } = await ingestionAroundJanuary();
    const cases: [string, string, number][] = [
      ['2025-01-01', '2025-01-31', 2],
      ['2025-01-31', '2025-01-31', 1],
      ['2025-02-01', '2025-02-01', 1],
      ['2025-01-01', '2025-02-01', 3],
      ['2024-12-01', '2024-12-31', 0],
      ['2025-01-02', '2025-01-30', 0],
    ];
    for (const [start_date, end_date, files] of cases) {
      const res = await range(id, { start_date, end_date, dry_run: true });
      expect(res.status, `${start_date}..${end_date}`).toBe(200);
      expect(res.body.status).toBe('dry_run');
      expect(res.body.impact.files_to_process, `${start_date}..${end_date}`).toBe(files);
    }
  });

  it('reprocesses exactly the files of the range: their rows are reloaded by a new run', async () => {
    const { id, table } = await ingestionAroundJanuary();
    const res = await range(id, { start_date: '2025-01-31', end_date: '2025-01-31' });
    expect(res.status).toBe(202);
    expect(res.body.operations!.map((o) => [o.operation, o.status])).toEqual([
      ['rows_removed', 'success'],
      ['run_triggered', 'success'],
    ]);
    expect(res.body.operations![0]!.details).toMatchObject({ files_selected: 1, rows_deleted: 10 });
    await h.waitForIngestionIdle(id);

    const run = await h.api<RunBody>('GET', `/api/v1/runs/${res.body.run_id}`);
    expect(run.body).toMatchObject({ status: 'SUCCESS', files_processed: 1, records_written: 10 });
    const rows = await h.sql.unsafe<{ file: string; run: string; n: number }[]>(
      `select regexp_replace(_source_file, '^.*/', '') as file, _run_id as run, count(*)::int as n
       from raw.${table} group by 1, 2 order by 1`,
    );
    expect(rows.map((r) => [r.file, r.run === res.body.run_id, r.n])).toEqual([
      ['a.jsonl', false, 10],
      ['b.jsonl', true, 10],
      ['c.jsonl', false, 10],
    ]);
  });

  it('refuses a missing confirm, an end before the start, a bad date and another operation', async () => {
    const { id } = await h.createIngestion({ 'a.jsonl': jsonLines(0, 5) }, {}, 'rr');
    const noConfirm = await h.api('POST', `/api/v1/ingestions/${id}/refresh-range`, {
      start_date: '2025-01-01',
      end_date: '2025-01-31',
      operation: 'reprocess',
    });
    expect(noConfirm.status).toBe(400);
    expect(noConfirm.body).toMatchObject({ error_code: 'CONFIRMATION_REQUIRED' });
    const refusals: [object, string][] = [
      [{ start_date: '2025-02-01', end_date: '2025-01-31' }, 'end_date'],
      [{ start_date: '2025-01-01T00:00:00Z', end_date: '2025-01-31' }, 'start_date'],
      [{ start_date: '2025-01-01', end_date: '2025-02-30' }, 'end_date'],
      [{ start_date: '2025-01-01', end_date: '2025-01-31', operation: 'full_refresh' }, 'operation'],
    ];
    for (const [body, field] of refusals) {
      const res = await range(id, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body, JSON.stringify(body)).toMatchObject({ error_code: 'VALIDATION_ERROR', field });
    }
  });
});
