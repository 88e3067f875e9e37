/**
 * `npm run bench:curves`: how the cost of a run grows with its work, from one run on one stack —
 * time and worker peak RSS for no-op runs over 10,000 / 100,000 / 1,000,000 processed objects
 * (against listing them alone), loads of 250,000 / 1,000,000 / 4,000,000 rows, and small-file loads
 * of 1,000 / 10,000 / 50,000 / 100,000 files (the last two show whether the worker's peak stays flat
 * as the file count grows), each point checked to load what it should; and, for the largest
 * no-op run, the length of the run workflow's history and its largest payload (Temporal's limits
 * are 50,000 events and 2 MB a payload).
 *
 * Each point also shows where its time went: CPU-seconds by process and Postgres statement time by
 * step (pg_stat_statements, grouped as the bench groups them).
 *
 * Run by hand, not in CI: at full size it takes about 35 minutes on 2 cores. CURVES_SCALE (0.01 to
 * 1) shrinks every point alike for a quick look; CURVES_ONLY (a comma list of load, small, noop)
 * runs only those curves. Progress goes to stderr; the report goes to stdout, its last line one JSON
 * object.
 */
import { mkdir, rm } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import type { temporal as proto } from '@temporalio/proto';
import { workflowIds } from '../src/temporal/ids.js';
import { jsonLine, splitRows, writeRows } from './data.js';
import { loadAverage } from './procstat.js';
import { type StepTime, withStatementProfile } from './profile.js';
import { int, round, secs, table } from './report.js';
import { listAll, putBuffer, putFile } from './s3.js';
import { startServices } from './services.js';
import {
  benchRoot,
  expectRun,
  type Measured,
  openStack,
  processes,
  progressNote,
  runMain,
  runSettings,
  type Stack,
  seedProcessedFiles,
  smallFilesRun,
  uploadTinyObjects,
} from './stack.js';

const note = progressNote('curves');

const scale = Number(process.env.CURVES_SCALE ?? '1');
if (!(scale >= 0.01 && scale <= 1))
  throw new Error(`CURVES_SCALE must be in [0.01, 1], not ${process.env.CURVES_SCALE}`);
/** The points of a curve at this scale (a point scaled below the minimum is the minimum, once). */
const scaled = (ns: number[], min: number) => [
  ...new Set(ns.map((n) => Math.max(min, Math.round(n * scale)))),
];
const points = {
  noop: scaled([10_000, 100_000, 1_000_000], 1_000),
  load: scaled([250_000, 1_000_000, 4_000_000], 8_000),
  small: scaled([1_000, 10_000, 50_000, 100_000], 10),
};
const curveNames = ['load', 'small', 'noop'] as const;
const only = (process.env.CURVES_ONLY ?? curveNames.join(',')).split(',').map((c) => c.trim());
for (const c of only)
  if (!(curveNames as readonly string[]).includes(c))
    throw new Error(`CURVES_ONLY takes a comma list of ${curveNames.join(', ')}, not ${c}`);
const runs = (curve: (typeof curveNames)[number]) => only.includes(curve);
const loadFiles = 8;
const rowsPerSmallFile = 100;

interface Point {
  curve: string;
  size: number;
  unit: string;
  run: Measured<unknown>;
  /** The listing alone, for no-op points. */
  list?: Measured<unknown>;
  /** Postgres statement time of the run, by step, largest first. */
  statements: StepTime[];
}

/** An ingestion's run, measured, with the statement time it spent. */
async function measuredRun(s: Stack, ingestionId: string) {
  const { value, profile } = await withStatementProfile(s.sql, () =>
    s.meter.measure(() => s.api.runAndWait(ingestionId)),
  );
  return { run: value, statements: profile };
}

/** One ingestion whose table exists (a first run of one small file made it), like a steady state. */
async function ingestionWithTable(s: Stack, name: string, prefix: string): Promise<string> {
  await putBuffer(s.s3, s.bucket, `${prefix}000-seed.jsonl`, Buffer.from(jsonLine(0)));
  const id = await s.api.createIngestion({
    name,
    connectionId: s.connectionId,
    bucket: s.bucket,
    prefix,
    destination: `bench.${name}`,
  });
  expectRun(await s.api.runAndWait(id), { discovered: 1, processed: 1, records: 1 });
  return id;
}

async function loadPoint(s: Stack, dataDir: string, rows: number): Promise<Point> {
  const prefix = `load-${rows}/`;
  note(`load: ${int(rows)} rows in ${loadFiles} files`);
  const ranges = splitRows(rows, loadFiles);
  const ingestionId = await ingestionWithTable(s, `curve_load_${rows}`, prefix);
  // Written, uploaded and removed a file at a time: the largest point is about 900 MB of JSON lines.
  for (const [i, range] of ranges.entries()) {
    const path = join(dataDir, `load-${rows}-${i}.jsonl`);
    await writeRows(path, range, jsonLine);
    await putFile(s.s3, s.bucket, `${prefix}part-${String(i).padStart(2, '0')}.jsonl`, path);
    await rm(path);
  }
  const { run, statements } = await measuredRun(s, ingestionId);
  expectRun(run.value, { discovered: ranges.length + 1, processed: ranges.length, records: rows });
  return { curve: 'load (table exists)', size: rows, unit: 'rows', run, statements };
}

async function smallFilesPoint(s: Stack, files: number): Promise<Point> {
  const prefix = `small-${files}/`;
  note(`small files: ${int(files)} files of ${rowsPerSmallFile} rows`);
  const ingestionId = await ingestionWithTable(s, `curve_small_${files}`, prefix);
  const { value: run, profile: statements } = await withStatementProfile(s.sql, () =>
    smallFilesRun(s, ingestionId, prefix, files, rowsPerSmallFile),
  );
  return { curve: 'small files', size: files, unit: 'files', run, statements };
}

async function noopPoint(s: Stack, objects: number): Promise<Point & { ingestionId: string }> {
  const prefix = `noop-${objects}/`;
  note(`no-op: ${int(objects)} processed objects (uploading them as tar archives MinIO extracts)`);
  await uploadTinyObjects(s.s3, s.bucket, prefix, objects);
  const ingestionId = await s.api.createIngestion({
    name: `curve_noop_${objects}`,
    connectionId: s.connectionId,
    bucket: s.bucket,
    prefix,
    destination: `bench.curve_noop_${objects}`,
  });
  await seedProcessedFiles(s, ingestionId, prefix);
  const list = await s.meter.measure(async () => {
    const listed = await listAll(s.s3, s.bucket, prefix);
    if (listed.count !== objects) throw new Error(`listed ${listed.count} objects, want ${objects}`);
  });
  const { run, statements } = await measuredRun(s, ingestionId);
  expectRun(run.value, { discovered: objects, processed: 0, records: 0 });
  return { curve: 'no-op run', size: objects, unit: 'objects', run, list, statements, ingestionId };
}

/** Every payload of an event, wherever in its attributes it is. */
function payloadSizes(value: unknown, out: number[]): void {
  if (!value || typeof value !== 'object') return;
  if (value instanceof Uint8Array) return;
  const payloads = (value as { payloads?: proto.api.common.v1.IPayload[] }).payloads;
  if (Array.isArray(payloads))
    for (const p of payloads) {
      let size = p.data?.length ?? 0;
      for (const m of Object.values(p.metadata ?? {})) size += m?.length ?? 0;
      out.push(size);
    }
  for (const v of Object.values(value)) payloadSizes(v, out);
}

/** The run workflow's executions (its continue-as-new chain): events of each, and the largest payload. */
async function historyOf(s: Stack, ingestionId: string) {
  const events: number[] = [];
  let largestPayload = 0;
  let runId: string | undefined;
  do {
    const history = await s.temporal.workflow
      .getHandle(workflowIds.ingestion(ingestionId), runId)
      .fetchHistory();
    events.push(history.events?.length ?? 0);
    const sizes: number[] = [];
    for (const e of history.events ?? []) payloadSizes(e, sizes);
    largestPayload = Math.max(largestPayload, ...sizes);
    runId =
      history.events?.[0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId || undefined;
  } while (runId);
  return {
    executions: events.length,
    maxEvents: Math.max(...events),
    totalEvents: events.reduce((a, b) => a + b, 0),
    largestPayload,
  };
}

async function main() {
  const settings = runSettings();
  const { root, cleanups, cleanup } = await benchRoot(note);
  try {
    note(`scale ${scale}; services under ${root}`);
    const loadAvgStart = loadAverage();
    const services = await startServices(root);
    cleanups.push(services.stop);
    const s = await openStack(root, services, settings, cleanups);
    const dataDir = join(root, 'data');
    await mkdir(dataDir, { recursive: true });

    const results: Point[] = [];
    if (runs('load')) for (const rows of points.load) results.push(await loadPoint(s, dataDir, rows));
    if (runs('small')) for (const files of points.small) results.push(await smallFilesPoint(s, files));
    let largest: Awaited<ReturnType<typeof noopPoint>> | undefined;
    if (runs('noop'))
      for (const objects of points.noop) {
        largest = await noopPoint(s, objects);
        results.push(largest);
      }
    const history = largest && (await historyOf(s, largest.ingestionId));
    const pointName = (p: Point) => `${p.curve}, ${int(p.size)} ${p.unit}`;

    const rate = (p: Point) => int(p.size / (p.run.ms / 1000));
    const out: string[] = ['Autoloader growth curves', ''];
    out.push(
      table(
        ['machine', ''],
        [
          ['cores (nproc)', os.availableParallelism()],
          ['memory', `${round(os.totalmem() / 2 ** 30, 1)} GiB`],
          ['cpu', os.cpus()[0]?.model ?? 'unknown'],
          ['postgres', s.pgVersion],
          ['node', process.version],
          ['load average start / end', `${loadAvgStart} / ${loadAverage()}`],
          ['CURVES_SCALE', scale],
          ...Object.entries(settings).map(([k, v]) => [k, v]),
        ],
        true,
      ),
      '',
      table(
        ['curve', 'size', 'run time', 'per second', 'listing alone', 'run ÷ listing', 'worker RSS peak'],
        results.map((p) => [
          p.curve,
          `${int(p.size)} ${p.unit}`,
          secs(p.run.ms),
          `${rate(p)} ${p.unit}/s`,
          p.list ? secs(p.list.ms) : '',
          p.list ? round(p.run.ms / p.list.ms).toFixed(2) : '',
          `${int(p.run.rssPeakMb)} MB`,
        ]),
      ),
      '',
      'CPU seconds by process during each run (2 cores = 2 CPU-seconds per wall second)',
      table(
        ['point', 'wall', ...processes],
        results.map((p) => [pointName(p), secs(p.run.ms), ...processes.map((k) => round(p.run.cpu[k], 1))]),
      ),
      '',
      'Postgres statement time of each run, its three largest steps (sum over connections)',
      table(
        ['point', 'all statements', 'largest steps'],
        results.map((p) => [
          pointName(p),
          secs(p.statements.reduce((a, t) => a + t.ms, 0)),
          p.statements
            .slice(0, 3)
            .map((t) => `${t.step} ${secs(t.ms)} (${int(t.calls)} calls)`)
            .join('; '),
        ]),
        true,
      ),
      '',
    );
    if (history)
      out.push(
        `history of the ${int(points.noop.at(-1)!)}-object no-op run: ${history.executions} execution(s), ` +
          `at most ${int(history.maxEvents)} events in one (${int(history.totalEvents)} in all; limit 50,000), ` +
          `largest payload ${int(history.largestPayload)} bytes (limit 2 MB)`,
        '',
      );
    process.stdout.write(`${out.join('\n')}\n`);
    process.stdout.write(
      `${JSON.stringify({
        scale,
        points: results.map((p) => ({
          curve: p.curve,
          size: p.size,
          run_s: round(p.run.ms / 1000),
          list_s: p.list ? round(p.list.ms / 1000) : undefined,
          rss_peak_mb: Math.round(p.run.rssPeakMb),
          cpu_s: Object.fromEntries(processes.map((k) => [k, round(p.run.cpu[k], 1)])),
          statements_s: Object.fromEntries(p.statements.map((t) => [t.step, round(t.ms / 1000)])),
        })),
        history: history && {
          executions: history.executions,
          max_events: history.maxEvents,
          total_events: history.totalEvents,
          largest_payload_bytes: history.largestPayload,
        },
        run_settings: settings,
      })}\n`,
    );
  } finally {
    await cleanup();
  }
}

runMain('curves', main);
