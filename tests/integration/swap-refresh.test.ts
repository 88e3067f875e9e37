import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resumePendingDeletions } from '../../src/services/deletions.js';
import { workflowIds } from '../../src/temporal/ids.js';
import { type Harness, jsonLines, type RunBody, startHarness } from '../helpers/harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

interface SwapResponse {
  status: string;
  run_id: string;
  operation_id: string;
  operations: { operation: string; status: string; details: Record<string, unknown> }[];
}

describe('full refresh with strategy "swap" (seed 004)', () => {
  it('keeps readers on a complete table throughout, then deletes the old version after the grace period, across a worker restart', async () => {
    const files = Object.fromEntries([0, 1, 2, 3].map((i) => [`d${i}.jsonl`, jsonLines(i * 1000, 1000)]));
    const { id, bucket, table } = await h.createIngestion(files, {}, 'swap');
    expect((await h.runAndWait(id)).records_written).toBe(4000);
    // The new version will differ from the old one, so a reader can tell which it saw.
    await h.putObject(bucket, 'd4.jsonl', jsonLines(4000, 1000));

    // A reader on its own connection, querying in a loop for the whole refresh.
    const reader = postgres(h.databaseUrl, { max: 1, onnotice: () => undefined });
    const seen: number[] = [];
    const failures: string[] = [];
    let reading = true;
    const loop = (async () => {
      while (reading) {
        try {
          const [r] = await reader.unsafe<{ n: number }[]>(`select count(*)::int as n from raw.${table}`);
          seen.push(r!.n);
        } catch (err) {
          failures.push(String(err));
        }
      }
    })();

    const res = await h.api<SwapResponse>('POST', `/api/v1/ingestions/${id}/full-refresh`, {
      confirm: true,
      strategy: 'swap',
      // Long enough for the checks below to find the old version still waiting on a loaded machine
      // (3 s was not, with the suite's other files running beside it).
      grace_period_seconds: 15,
    });
    expect(res.status).toBe(202);
    expect(res.body.operations.map((o) => o.operation)).toEqual(['run_triggered']);
    await h.waitForIngestionIdle(id);
    reading = false;
    await loop;
    await reader.end();

    expect(failures).toEqual([]);
    expect(seen[0]).toBe(4000);
    expect(seen.at(-1)).toBe(5000);
    expect(seen.every((n) => n === 4000 || n === 5000)).toBe(true);

    const op = await h.api<{
      status: string;
      operations: { operation: string; details: Record<string, unknown> }[];
    }>('GET', `/api/v1/operations/${res.body.operation_id}`);
    expect(op.body.status).toBe('success');
    expect(op.body.operations.map((o) => o.operation)).toEqual([
      'run_triggered',
      'table_swapped',
      'deletion_scheduled',
    ]);
    const run = await h.api<RunBody>('GET', `/api/v1/runs/${res.body.run_id}`);
    expect(run.body).toMatchObject({ status: 'SUCCESS', files_processed: 5, records_written: 5000 });
    // The shadow's history became the live one: the next run has nothing to do.
    const next = await h.runAndWait(id);
    expect(next).toMatchObject({ files_processed: 0, files_skipped: 5 });

    const pending = await h.api<{ items: { id: string; table_name: string }[] }>(
      'GET',
      '/api/v1/pending-deletions',
    );
    const deletion = pending.body.items.find(
      (d) => d.table_name === op.body.operations[2]!.details.table_name,
    );
    expect(deletion).toBeDefined();
    const oldTable = deletion!.table_name;
    const [before] = await h.sql`select to_regclass(${oldTable}) is not null as present`;
    expect(before!.present).toBe(true);

    // A deploy during the grace period: the durable timer survives it.
    await h.restartWorker();
    await h.client.workflow.getHandle(workflowIds.deletion(deletion!.id)).result();
    const [after] = await h.sql`select to_regclass(${oldTable}) is not null as present`;
    expect(after!.present).toBe(false);
    const [live] = await h.sql.unsafe<{ n: number }[]>(`select count(*)::int as n from raw.${table}`);
    expect(live!.n).toBe(5000);
  });

  it('leaves the live table untouched when the shadow run fails', async () => {
    const { id, bucket, table } = await h.createIngestion({ 'ok.jsonl': jsonLines(0, 100) }, {}, 'swapf');
    await h.runAndWait(id);
    // Every file of the new load is broken: the shadow run fails as a whole.
    await h.putObject(bucket, 'ok.jsonl', '{"id": 1, broken\n');
    const res = await h.api<SwapResponse>('POST', `/api/v1/ingestions/${id}/full-refresh`, {
      confirm: true,
      strategy: 'swap',
    });
    expect(res.status).toBe(202);
    await h.waitForIngestionIdle(id);
    const op = await h.api<{ status: string }>('GET', `/api/v1/operations/${res.body.operation_id}`);
    expect(op.body.status).toBe('failed');
    const [live] = await h.sql.unsafe<{ n: number }[]>(`select count(*)::int as n from raw.${table}`);
    expect(live!.n).toBe(100);
    const shadows =
      await h.sql`select relname from pg_class where relname like ${`_al_${res.body.operation_id}%`}`;
    expect(shadows).toHaveLength(0);
    const files = await h.api<{ items: { status: string }[] }>(
      'GET',
      `/api/v1/ingestions/${id}/processed-files`,
    );
    expect(files.body.items.map((f) => f.status)).toEqual(['SUCCESS']);
  });

  it('carries out at start-up a deletion that was already due (its timer lost with a wiped server)', async () => {
    const table = `stale_${Math.random().toString(36).slice(2, 10)}`;
    await h.sql.unsafe(`create table raw.${table} (x int)`);
    const id = `del_${table}`;
    await h.sql`
      insert into autoloader.pending_deletions (id, tenant_id, schema_name, table_name, due_at)
      values (${id}, ${h.tenantId}, 'raw', ${table}, now() - interval '1 minute')`;
    expect(
      await resumePendingDeletions({ sql: h.sql, temporal: h.client, taskQueue: h.taskQueue }),
    ).toBeGreaterThan(0);
    await h.client.workflow.getHandle(workflowIds.deletion(id)).result();
    const [gone] = await h.sql`select to_regclass(${`raw.${table}`}) is null as gone`;
    expect(gone!.gone).toBe(true);
    const [row] =
      await h.sql`select executed_at is not null as done from autoloader.pending_deletions where id = ${id}`;
    expect(row!.done).toBe(true);
  });
});
