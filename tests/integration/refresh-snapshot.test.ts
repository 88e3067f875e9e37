import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { workflowIds } from '../../src/temporal/ids.js';
import { type Harness, jsonLines, type RunBody, startHarness } from '../helpers/harness.js';
import { holdLock } from '../helpers/locks.js';

/**
 * A refresh loads a snapshot of the source (issue 11): files that arrive while a full refresh is
 * loading are not half-included; the next run loads them. Real Temporal, Postgres and MinIO.
 */
let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

const rowCount = async (table: string) => {
  const [c] = await h.sql.unsafe<{ n: number }[]>(`select count(*)::int as n from raw.${table}`);
  return c!.n;
};

describe('a refresh’s snapshot of the source', () => {
  for (const strategy of ['swap', 'drop'] as const) {
    it(`(${strategy}) leaves a file that arrives during the refresh to the next run`, async () => {
      const ing = await h.createIngestion(
        { 'a.jsonl': jsonLines(0, 10), 'b.jsonl': jsonLines(10, 10) },
        {},
        'snap',
      );
      expect(await h.runAndWait(ing.id)).toMatchObject({ status: 'SUCCESS', files_processed: 2 });

      // Writes to the runs table wait: the refresh's run cannot record itself, so cannot list the
      // source, until the late file is in.
      const hold = await holdLock(h.sql, 'autoloader.runs', 'exclusive');
      let refreshRunId: string;
      try {
        const res = await h.api<{ run_id: string }>('POST', `/api/v1/ingestions/${ing.id}/full-refresh`, {
          confirm: true,
          strategy,
        });
        expect(res.status).toBe(202);
        refreshRunId = res.body.run_id;
        await h.putObject(ing.bucket, 'late.jsonl', jsonLines(100, 10));
      } finally {
        await hold.release();
      }
      await h.waitForIngestionIdle(ing.id);

      // The snapshot was taken before the late file was written (as the run's input records it).
      const history = await h.client.workflow
        .getHandle(workflowIds.ingestionRun(ing.id, refreshRunId))
        .fetchHistory();
      const started = history.events?.[0]?.workflowExecutionStartedEventAttributes;
      const input = JSON.parse(Buffer.from(started!.input!.payloads![0]!.data!).toString()) as {
        modifiedBefore: string;
      };
      // (The listing's time, to the millisecond on MinIO; HEAD's is to the second.)
      const listed = await h.s3Client.send(new ListObjectsV2Command({ Bucket: ing.bucket, Prefix: 'late' }));
      const late = listed.Contents?.[0]?.LastModified;
      expect(late!.getTime()).toBeGreaterThan(new Date(input.modifiedBefore).getTime());

      const refreshRun = await h.api<RunBody>('GET', `/api/v1/runs/${refreshRunId}`);
      expect(refreshRun.body).toMatchObject({ status: 'SUCCESS', files_processed: 2, records_written: 20 });
      expect(await rowCount(ing.table)).toBe(20);
      // The next run loads exactly the file the refresh left out.
      expect(await h.runAndWait(ing.id)).toMatchObject({
        status: 'SUCCESS',
        files_processed: 1,
        records_written: 10,
      });
      expect(await rowCount(ing.table)).toBe(30);
    });
  }
});
