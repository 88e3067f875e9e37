import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, jsonLines, type RunBody, startHarness } from '../helpers/harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

interface PartialBody {
  status: string;
  error_code: string;
  operation_id: string;
  operations: { operation: string; status: string; error?: string }[];
  recovery: { message: string; action: string; state: string };
}

describe('a refresh step failing part-way', () => {
  it('answers partial_failure with recovery, then completes by itself when the fault clears, without redoing steps', async () => {
    const { id, table } = await h.createIngestion({ 'a.jsonl': jsonLines(0, 100) }, {}, 'pf');
    await h.runAndWait(id);

    // A fault confined to this ingestion: clearing its file history fails, as it would with the
    // state database refusing connections, until the trigger is dropped.
    const fn = `fail_${table}`;
    await h.sql.unsafe(`
      create function autoloader.${fn}() returns trigger language plpgsql as $$
      begin
        if old.ingestion_id = '${id}' then
          raise exception 'simulated outage: state database unavailable' using errcode = '57P03';
        end if;
        return old;
      end $$`);
    await h.sql.unsafe(
      `create trigger ${fn} before delete on autoloader.processed_files for each row execute function autoloader.${fn}()`,
    );

    const app = h.makeApp({ refresh: { responseWaitMs: 2500 } });
    const res = await app.request(`/api/v1/ingestions/${id}/full-refresh`, {
      method: 'POST',
      headers: { authorization: `Bearer ${h.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ confirm: true }),
    });
    const body = (await res.json()) as PartialBody;
    expect(res.status).toBe(500);
    expect(body).toMatchObject({ status: 'partial_failure', error_code: 'PARTIAL_FAILURE' });
    expect(body.operations.map((o) => [o.operation, o.status])).toEqual([
      ['table_dropped', 'success'],
      ['processed_files_cleared', 'failed'],
    ]);
    // The database's own message goes to the log, not to the client.
    expect(body.operations[1]!.error).not.toContain('simulated outage');
    expect(body.operations[1]).toMatchObject({ error_code: 'DEPENDENCY_UNAVAILABLE' });
    expect(body.operations[1]!.error).toMatch(/backing service/);
    expect(body.recovery.message).toContain('completes by itself');
    expect(body.recovery.action).toContain(`/api/v1/operations/${body.operation_id}`);

    const during = await h.api<{ status: string }>('GET', `/api/v1/operations/${body.operation_id}`);
    expect(during.body.status).toBe('partial_failure');

    await h.sql.unsafe(`drop trigger ${fn} on autoloader.processed_files`);
    await h.sql.unsafe(`drop function autoloader.${fn}()`);
    await h.waitForIngestionIdle(id);

    const done = await h.api<{
      status: string;
      run_id: string;
      operations: { operation: string; timestamp: string }[];
    }>('GET', `/api/v1/operations/${body.operation_id}`);
    expect(done.body.status).toBe('success');
    expect(done.body.operations.map((o) => o.operation)).toEqual([
      'table_dropped',
      'processed_files_cleared',
      'run_triggered',
    ]);
    // The table was dropped once: the step recorded before the fault is the one still on record.
    expect(done.body.operations[0]!.timestamp).toBe(
      (body.operations[0] as unknown as { timestamp: string }).timestamp,
    );
    const run = await h.api<RunBody>('GET', `/api/v1/runs/${done.body.run_id}`);
    expect(run.body).toMatchObject({ status: 'SUCCESS', files_processed: 1, records_written: 100 });
  });
});
