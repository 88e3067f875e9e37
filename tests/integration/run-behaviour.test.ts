import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, jsonLines, type RunBody, startHarness } from '../helpers/harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

const uniqueTable = () => `t_${Math.random().toString(36).slice(2, 10)}`;

async function createIngestion(bucket: string, overrides: Record<string, unknown> = {}) {
  const table = uniqueTable();
  const res = await h.api<{ id: string }>('POST', '/api/v1/ingestions', {
    name: table,
    connection_id: await h.createS3Connection(),
    source: { bucket, prefix: '', pattern: '**/*.jsonl', format: 'jsonl' },
    destination: `raw.${table}`,
    ...overrides,
  });
  expect(res.status).toBe(201);
  return { id: res.body.id, table };
}

describe('a run', () => {
  it('configures, runs and lands the data through the API alone (E2E-01)', async () => {
    const bucket = await h.createBucket();
    await h.putObject(bucket, 'one.jsonl', jsonLines(0, 250));
    const { id, table } = await createIngestion(bucket);

    const started = await h.api<RunBody & { trigger: string }>('POST', `/api/v1/ingestions/${id}/run`);
    expect(started.status).toBe(202);
    expect(started.body).toMatchObject({ status: 'RUNNING', trigger: 'manual' });
    await h.waitForIngestionIdle(id);

    const run = await h.api<RunBody>('GET', `/api/v1/runs/${started.body.id}`);
    expect(run.body).toMatchObject({ status: 'SUCCESS', files_processed: 1, records_written: 250 });
    expect(run.body.bytes_read).toBe(Buffer.byteLength(jsonLines(0, 250)));
    const rows = await h.sql.unsafe(
      `select id::int as id, _source_file, _run_id from raw.${table} order by id limit 2`,
    );
    expect(rows[0]).toMatchObject({
      id: 0,
      _source_file: `s3://${bucket}/one.jsonl`,
      _run_id: started.body.id,
    });
  });

  it('pages through a 1,500-object listing and loads every object', async () => {
    const bucket = await h.createBucket();
    const keys = Array.from({ length: 1500 }, (_, i) => `many/part-${String(i).padStart(5, '0')}.jsonl`);
    // Bounded parallel uploads: MinIO and this machine both have two cores.
    for (let i = 0; i < keys.length; i += 50) {
      await Promise.all(
        keys.slice(i, i + 50).map((k, j) => h.putObject(bucket, k, jsonLines((i + j) * 2, 2))),
      );
    }
    const { id, table } = await createIngestion(bucket);
    const run = await h.runAndWait(id);
    expect(run).toMatchObject({
      status: 'SUCCESS',
      files_discovered: 1500,
      files_processed: 1500,
      records_written: 3000,
    });
    const [c] = await h.sql.unsafe(
      `select count(*)::int as n, count(distinct id)::int as d from raw.${table}`,
    );
    expect(c).toEqual({ n: 3000, d: 3000 });
  });

  it('fails a malformed file alone, records its error, and ends PARTIAL_SUCCESS', async () => {
    const bucket = await h.createBucket();
    await h.putObject(bucket, 'a.jsonl', jsonLines(0, 100));
    await h.putObject(bucket, 'b.jsonl', `${jsonLines(100, 10)}{"id": 110, "user": "broken\n`);
    await h.putObject(bucket, 'c.jsonl', jsonLines(200, 100));
    // Over 1 MiB: staged by COPY rather than read whole; its errors name the line the same way.
    await h.putObject(bucket, 'd.jsonl', `${jsonLines(1000, 12_000)}{"id": 13000, "user": "broken\n`);
    const { id, table } = await createIngestion(bucket);

    const run = await h.runAndWait(id);
    expect(run).toMatchObject({
      status: 'PARTIAL_SUCCESS',
      files_processed: 2,
      files_failed: 2,
      records_written: 200,
    });
    const failed = await h.api<{
      items: { file_path: string; error_message: string; error_type: string; retry_count: number }[];
    }>('GET', `/api/v1/ingestions/${id}/processed-files?status=FAILED`);
    expect(failed.body.items).toHaveLength(2);
    const [b, d] = [...failed.body.items].sort((x, y) => x.file_path.localeCompare(y.file_path));
    expect(b).toMatchObject({ file_path: `s3://${bucket}/b.jsonl`, retry_count: 1 });
    // The broken line's number is in the message.
    expect(b!.error_message).toMatch(/^line 11: .*json/i);
    expect(b!.error_type).toMatch(/^PostgresError:22/);
    expect(d!.error_message).toMatch(/^line 12001: .*json/i);
    expect(d!.error_type).toBe(b!.error_type);
    // None of the broken file's rows made it in: the file is all or nothing.
    const [c] = await h.sql.unsafe(
      `select count(*)::int as n from raw.${table} where id between 100 and 199 or id >= 1000`,
    );
    expect(c?.n).toBe(0);

    // Fixed upstream: the next run picks up the corrected files and only those.
    await h.putObject(bucket, 'b.jsonl', jsonLines(100, 100));
    await h.putObject(bucket, 'd.jsonl', jsonLines(1000, 12_000));
    const again = await h.runAndWait(id);
    expect(again).toMatchObject({ status: 'SUCCESS', files_processed: 2, records_written: 12_100 });
  });

  it('replaces the rows of a file rewritten with new content (new ETag), without duplicates', async () => {
    const bucket = await h.createBucket();
    await h.putObject(bucket, 'x.jsonl', jsonLines(0, 100));
    await h.putObject(bucket, 'y.jsonl', jsonLines(100, 100));
    const { id, table } = await createIngestion(bucket);
    await h.runAndWait(id);

    await h.putObject(bucket, 'x.jsonl', jsonLines(0, 150));
    const second = await h.runAndWait(id);
    expect(second).toMatchObject({
      status: 'SUCCESS',
      files_processed: 1,
      files_skipped: 1,
      records_written: 150,
    });
    const [c] = await h.sql.unsafe(
      `select count(*)::int as n, count(distinct id)::int as d,
              count(*) filter (where _source_file like '%/x.jsonl')::int as x from raw.${table}`,
    );
    // x.jsonl now holds ids 0-149, overlapping y's 100-149: rows come per file, and x's old rows are gone.
    expect(c).toEqual({ n: 250, d: 200, x: 150 });
  });

  it('answers a second run started at once with 409 RUN_IN_PROGRESS naming the first', async () => {
    const bucket = await h.createBucket();
    for (let i = 0; i < 20; i++) await h.putObject(bucket, `f${i}.jsonl`, jsonLines(i * 100, 100));
    const { id } = await createIngestion(bucket);

    const [a, b] = await Promise.all([
      h.api<{ id: string; current_run_id?: string; error_code?: string }>(
        'POST',
        `/api/v1/ingestions/${id}/run`,
      ),
      h.api<{ id: string; current_run_id?: string; error_code?: string }>(
        'POST',
        `/api/v1/ingestions/${id}/run`,
      ),
    ]);
    const statuses = [a.status, b.status].sort();
    expect(statuses).toEqual([202, 409]);
    const [winner, loser] = a.status === 202 ? [a, b] : [b, a];
    expect(loser.body).toMatchObject({ error_code: 'RUN_IN_PROGRESS', current_run_id: winner.body.id });
    expect(loser.headers.get('x-current-run-id')).toBe(winner.body.id);
    await h.waitForIngestionIdle(id);
    const runs = await h.api<{ items: unknown[] }>('GET', `/api/v1/ingestions/${id}/runs`);
    expect(runs.body.items).toHaveLength(1);
  });

  it('clears the processed-file history only with confirm=true, then reloads everything', async () => {
    const bucket = await h.createBucket();
    await h.putObject(bucket, 'p.jsonl', jsonLines(0, 10));
    const { id } = await createIngestion(bucket);
    await h.runAndWait(id);

    const refused = await h.api('DELETE', `/api/v1/ingestions/${id}/processed-files`);
    expect(refused.status).toBe(400);
    expect(refused.body).toMatchObject({ error_code: 'CONFIRMATION_REQUIRED' });

    const cleared = await h.api('DELETE', `/api/v1/ingestions/${id}/processed-files?confirm=true`);
    expect(cleared.status).toBe(200);
    expect(cleared.body).toMatchObject({ files_cleared: 1 });
    const rerun = await h.runAndWait(id);
    // The file's old rows are replaced by lineage, so clearing history never duplicates data.
    expect(rerun).toMatchObject({ files_processed: 1, records_written: 10 });
  });
});
