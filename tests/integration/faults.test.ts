import { randomBytes } from 'node:crypto';
import { readdir, readFile, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { waitFor } from '../../src/dev/service.js';
import { AppError } from '../../src/domain/errors.js';
import { testConnection } from '../../src/services/connections.js';
import { workflowIds } from '../../src/temporal/ids.js';
import { type Fault, type FaultyProxy, startFaultyProxy } from '../helpers/faulty-proxy.js';
import {
  type Harness,
  jsonLines,
  minioConnectionConfig,
  type RunBody,
  startHarness,
} from '../helpers/harness.js';

/**
 * Ordinary faults must not crash the process, wedge an ingestion or be retried for ever: a store
 * that resets the connection part-way through a file, objects the store refuses, bad credentials,
 * a missing bucket, a run cancelled or terminated, a table a view depends on.
 */
// A file that keeps failing for an unknown reason fails after this many attempts (default 5).
process.env.FILE_MAX_ATTEMPTS = '3';

let h: Harness;
let proxy: FaultyProxy;
const faults = new Map<string, Fault>();

beforeAll(async () => {
  h = await startHarness();
  const minio = new URL(inject('s3').endpoint);
  proxy = await startFaultyProxy({ host: minio.hostname, port: Number(minio.port) }, (method, p) =>
    method === 'GET' ? faults.get(p.split('/').slice(2).join('/')) : undefined,
  );
});
afterAll(async () => {
  await proxy?.close();
  await h?.close();
});

/** An ingestion over a fresh bucket, reached through the faulty proxy. */
async function viaProxy(files: Record<string, string | Buffer>, source: Record<string, unknown> = {}) {
  const bucket = await h.createBucket();
  for (const [key, body] of Object.entries(files)) await h.putObject(bucket, key, body);
  await h.createS3Connection(); // stores the MinIO secrets for this tenant
  const conn = await h.api<{ id: string }>('POST', '/api/v1/connections', {
    name: `proxy-${bucket}`,
    kind: 's3',
    config: { ...minioConnectionConfig(inject('s3')), endpoint: proxy.endpoint },
  });
  const table = `f_${bucket.replaceAll('-', '_')}`.slice(0, 60);
  const ing = await h.api<{ id: string }>('POST', '/api/v1/ingestions', {
    name: table,
    connection_id: conn.body.id,
    source: { bucket, format: 'jsonl', ...source },
    destination: `raw.${table}`,
  });
  expect(ing.status).toBe(201);
  return { id: ing.body.id, bucket, table };
}

async function files(id: string) {
  const res = await h.api<{
    items: { file_path: string; status: string; error_type: string | null; error_message: string | null }[];
  }>('GET', `/api/v1/ingestions/${id}/processed-files`);
  return Object.fromEntries(res.body.items.map((f) => [f.file_path.split('/').pop()!, f]));
}

/** Random text, so that gzip and Parquet cannot shrink it below the cut. */
const noise = (n: number) => randomBytes(n).toString('hex');

/** The loader's temporary files and folders (DuckDB's copies) left in the temp dir, and open file fds there. */
async function leftovers(): Promise<{ temp: string[]; fds: string[] }> {
  // This process's own (the harness worker runs in it): test files beside it load too, and the
  // direct path's and DuckDB's temp dirs carry the process id that made them.
  const temp = (await readdir(tmpdir())).filter(
    (n) => n.startsWith('autoloader-') && n.includes(`-${process.pid}-`),
  );
  const fds: string[] = [];
  for (const fd of await readdir('/proc/self/fd')) {
    const target = await readlink(`/proc/self/fd/${fd}`).catch(() => '');
    if (target.startsWith(tmpdir()) && !target.includes('autoloader-test-')) fds.push(target);
  }
  return { temp, fds };
}

async function parquetOf(select: string): Promise<Buffer> {
  const file = path.join(tmpdir(), `fixture-${process.pid}-${noise(4)}.parquet`);
  const db = await DuckDBInstance.create(':memory:');
  const conn = await db.connect();
  try {
    await conn.run(`COPY (${select}) TO '${file}' (FORMAT parquet)`);
    return await readFile(file);
  } finally {
    conn.closeSync();
    await rm(file, { force: true });
  }
}

describe('a store that breaks off part-way through a file', () => {
  it('fails that file after a bounded number of attempts, for every format; the process lives and nothing is left open', async () => {
    const rows = (n: number) =>
      `${Array.from({ length: n }, (_, i) => JSON.stringify({ id: i, pad: noise(40) })).join('\n')}\n`;
    const big = rows(15_000);
    const array = JSON.stringify(Array.from({ length: 15_000 }, (_, i) => ({ id: i, pad: noise(40) })));
    const parquet = await parquetOf(
      'select i as id, md5(i::varchar) || md5((i * 7)::varchar) as pad from range(60000) t(i)',
    );
    const gz = gzipSync(big);
    for (const buf of [gz, parquet]) expect(buf.length).toBeGreaterThan(600_000);
    const before = await leftovers();
    for (const key of [
      'broken-plain.jsonl',
      'broken-zipped.jsonl.gz',
      'broken-array.json',
      'broken-columnar.parquet',
    ]) {
      faults.set(key, { cutAfterBytes: 256 * 1024 });
    }
    const { id } = await viaProxy({
      'good.jsonl': jsonLines(0, 10),
      'broken-plain.jsonl': big,
      'broken-zipped.jsonl.gz': gz,
    });
    const run = await h.runAndWait(id);
    expect(run.status).toBe('PARTIAL_SUCCESS');
    const f = await files(id);
    expect(f['good.jsonl']!.status).toBe('SUCCESS');
    expect(f['broken-plain.jsonl']).toMatchObject({ status: 'FAILED' });
    expect(f['broken-plain.jsonl']!.error_message).toMatch(/failed 3 times/);
    expect(f['broken-zipped.jsonl.gz']!.error_message).toMatch(/failed 3 times/);

    for (const [format, key] of [
      ['json', 'broken-array.json'],
      ['parquet', 'broken-columnar.parquet'],
    ] as const) {
      const one = await viaProxy({ [key]: format === 'json' ? array : parquet }, { format });
      const r = await h.runAndWait(one.id);
      expect(r, format).toMatchObject({ status: 'FAILED', files_failed: 1 });
      expect((await files(one.id))[key]!.error_message, format).toMatch(/failed 3 times/);
    }
    const after = await leftovers();
    expect(after.temp).toEqual(before.temp);
    expect(after.fds).toEqual([]);
  });
});

describe('objects the store refuses', () => {
  it('fail alone and stay failed for that version: the next quiet run is SUCCESS with nothing to do', async () => {
    const { id } = await viaProxy({
      'ok.jsonl': jsonLines(0, 5),
      'denied.jsonl': jsonLines(10, 5),
      'archived.jsonl': jsonLines(20, 5),
      'broken.jsonl': '{"id": 1}\n{"id": \n',
    });
    faults.set('denied.jsonl', { status: 403, s3Code: 'AccessDenied' });
    faults.set('archived.jsonl', { status: 403, s3Code: 'InvalidObjectState' });
    const before = proxy.faults();
    const first = await h.runAndWait(id);
    expect(first).toMatchObject({ status: 'PARTIAL_SUCCESS', files_processed: 1, files_failed: 3 });
    // Each refused object was asked for once: not retried within the run.
    expect(proxy.faults() - before).toBe(2);
    const f = await files(id);
    expect(f['denied.jsonl']).toMatchObject({ status: 'FAILED', error_type: 'SourceFileError' });
    expect(f['denied.jsonl']!.error_message).toMatch(/AccessDenied/);
    expect(f['archived.jsonl']!.error_message).toMatch(/InvalidObjectState/);
    expect(f['broken.jsonl']!.error_message).toMatch(/^line 2: /);

    const quiet = await h.runAndWait(id);
    expect(quiet).toMatchObject({ status: 'SUCCESS', files_processed: 0, files_failed: 0 });
    expect(proxy.faults() - before).toBe(2);
  });
});

describe("seed 003's E2E-03 error scenarios, through the API", () => {
  it('invalid credentials: the run fails, saying why and what to check', async () => {
    const bucket = await h.createBucket();
    await h.putObject(bucket, 'a.jsonl', jsonLines(0, 3));
    await h.api('PUT', '/api/v1/secrets/wrong-key', { value: 'not-a-key' });
    const conn = await h.api<{ id: string }>('POST', '/api/v1/connections', {
      name: `bad-creds-${bucket}`,
      kind: 's3',
      config: { ...minioConnectionConfig(inject('s3')), access_key_id: { secret: 'wrong-key' } },
    });
    const ing = await h.api<{ id: string }>('POST', '/api/v1/ingestions', {
      name: `bad-creds-${bucket}`,
      connection_id: conn.body.id,
      source: { bucket, format: 'jsonl' },
      destination: `raw.bad_creds_${bucket.slice(2, 10)}`,
    });
    const run = await h.runAndWait(ing.body.id);
    expect(run.status).toBe('FAILED');
    expect(run.error).toMatch(/InvalidAccessKeyId/);
    expect(run.error).toContain(`POST /api/v1/connections/${conn.body.id}/test`);
    const test = await h.api<{ ok: boolean; checks: { name: string; ok: boolean; detail: string }[] }>(
      'POST',
      `/api/v1/connections/${conn.body.id}/test`,
      { bucket },
    );
    expect(test.body.ok).toBe(false);
    expect(test.body.checks.at(-1)).toMatchObject({ name: 'list', ok: false });
    expect(test.body.checks.at(-1)!.detail).toMatch(/InvalidAccessKeyId/);
  });

  it('a connection test no worker finishes in time is SERVICE_UNAVAILABLE, not an internal error', async () => {
    const id = await h.createS3Connection();
    // A task queue no worker polls: the test workflow times out, as with every worker down or busy.
    const deps = { db: h.db, temporal: h.client, taskQueue: `nobody-${randomBytes(4).toString('hex')}` };
    const err = await testConnection(deps, h.tenantId, id, {}, 2_000).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppError);
    expect(err).toMatchObject({ code: 'SERVICE_UNAVAILABLE', message: expect.stringMatching(/2 s/) });
    // With a worker there, the same test answers with its checks.
    const answered = await testConnection({ ...deps, taskQueue: h.taskQueue }, h.tenantId, id, {});
    expect(answered.checks.length).toBeGreaterThan(0);
  });

  it('a missing bucket: the run fails naming it; an empty bucket: SUCCESS with zero files, table untouched', async () => {
    const missing = await h.createIngestion({}, {}, 'nobucket');
    await h.s3Client.send(
      new (await import('@aws-sdk/client-s3')).DeleteBucketCommand({ Bucket: missing.bucket }),
    );
    const failed = await h.runAndWait(missing.id);
    expect(failed.status).toBe('FAILED');
    expect(failed.error).toMatch(/NoSuchBucket/);

    const empty = await h.createIngestion({}, {}, 'empty');
    const quiet = await h.runAndWait(empty.id);
    expect(quiet).toMatchObject({
      status: 'SUCCESS',
      files_discovered: 0,
      files_processed: 0,
      records_written: 0,
    });
    const [t] = await h.sql`select to_regclass(${`raw.${empty.table}`}) as t`;
    expect(t!.t).toBeNull();
  });

  it('malformed JSON: the file fails naming its line, the run says every file it tried failed', async () => {
    const { id } = await h.createIngestion(
      { 'bad.jsonl': '{"id": 1}\n{"id": 2\n{"id": 3}\n' },
      {},
      'malformed',
    );
    const run = await h.runAndWait(id);
    expect(run).toMatchObject({ status: 'FAILED', files_failed: 1 });
    expect((await files(id))['bad.jsonl']!.error_message).toMatch(
      /^line 2: invalid input syntax for type json/,
    );
  });
});

describe('cancelling', () => {
  it('a run stops, ends CANCELLED, loads nothing afterwards, and frees the ingestion', async () => {
    const table = `cancel_${noise(4)}`;
    const lock = await h.holdTableLock(table);
    const bucket = await h.createBucket();
    await Promise.all(
      Array.from({ length: 20 }, (_, i) => h.putObject(bucket, `f${i}.jsonl`, jsonLines(i * 10, 10))),
    );
    const ing = await h.api<{ id: string }>('POST', '/api/v1/ingestions', {
      name: table,
      connection_id: await h.createS3Connection(),
      source: { bucket, format: 'jsonl' },
      destination: `raw.${table}`,
    });
    const started = await h.api<{ id: string }>('POST', `/api/v1/ingestions/${ing.body.id}/run`);
    // Files are being loaded (and wait on the lock).
    await waitFor(
      'a file of the run being loaded',
      async () => {
        const [r] =
          await h.sql`select count(*)::int as n from autoloader.processed_files where run_id = ${started.body.id} and status = 'PROCESSING'`;
        return r!.n > 0 ? true : undefined;
      },
      { timeoutMs: 60_000 },
    );
    const cancelled = await h.api<RunBody>('POST', `/api/v1/runs/${started.body.id}/cancel`);
    expect(cancelled.status).toBe(200);
    expect(cancelled.body.status).toBe('CANCELLED');
    await lock.release();
    await h.waitForIngestionIdle(ing.body.id);
    const [loaded] = await h.sql`
      select count(*)::int as n from autoloader.processed_files where run_id = ${started.body.id} and status = 'SUCCESS'`;
    expect(loaded!.n).toBe(0);
    const next = await h.runAndWait(ing.body.id);
    expect(next).toMatchObject({ status: 'SUCCESS', files_processed: 20, records_written: 200 });
  });

  it('a run whose workflow was terminated from the Temporal UI is closed as FAILED, and its ingestion can be deleted', async () => {
    const table = `term_${noise(4)}`;
    const lock = await h.holdTableLock(table);
    const bucket = await h.createBucket();
    await h.putObject(bucket, 'a.jsonl', jsonLines(0, 3));
    const ing = await h.api<{ id: string }>('POST', '/api/v1/ingestions', {
      name: table,
      connection_id: await h.createS3Connection(),
      source: { bucket, format: 'jsonl' },
      destination: `raw.${table}`,
    });
    const started = await h.api<{ id: string }>('POST', `/api/v1/ingestions/${ing.body.id}/run`);
    await h.client.workflow.getHandle(workflowIds.ingestion(ing.body.id)).terminate('by hand, from the UI');
    await lock.release();
    const run = await h.api<RunBody>('GET', `/api/v1/runs/${started.body.id}`);
    expect(run.body.status).toBe('FAILED');
    expect(run.body.error).toMatch(/terminated/);
    expect((await h.api('DELETE', `/api/v1/ingestions/${ing.body.id}`)).status).toBe(204);
  });
});

describe('a table a view depends on', () => {
  it('is not dropped for ever: the drop is refused with the reason at once', async () => {
    const { id, table } = await h.createIngestion({ 'a.jsonl': jsonLines(0, 3) }, {}, 'viewdep');
    await h.runAndWait(id);
    await h.sql.unsafe(`create view raw.${table}_v as select id from raw.${table}`);
    const res = await h.api<{ error_code: string; detail: string }>(
      'DELETE',
      `/api/v1/ingestions/${id}/table?confirm=true`,
    );
    expect(res.status).toBe(409);
    expect(res.body.error_code).toBe('DEPENDENT_OBJECTS');
    expect(res.body.detail).toContain(`${table}_v`);
    // The ingestion is free again.
    expect((await h.runAndWait(id)).status).toBe('SUCCESS');
  });
});
