/**
 * `npm run bench`: how fast Autoloader loads, against what this machine's Postgres can do, all in
 * one run on one Postgres. See bench/README.md for what each figure means.
 *
 * Progress goes to stderr; the report goes to stdout, its last line one JSON object.
 */

import { mkdir } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import type { RunJson } from '../src/api/routes/runs.js';
import type { Sql } from '../src/db/client.js';
import {
  type CopyClient,
  chooseCopyClient,
  copyFiles,
  createCopyTarget,
  createShapedCopyTarget,
  psqlVersion,
} from './copy-baseline.js';
import { columns, csvLine, jsonLine, jsonLines, type RowRange, splitRows, writeRows } from './data.js';
import { loadAverage, statusMb } from './procstat.js';
import { type StepTime, withStatementProfile } from './profile.js';
import { int, median, round, secs, table } from './report.js';
import { forEachLimit, listAll, putBuffer, putFile } from './s3.js';
import { postgresFlags, type Services, startServices } from './services.js';
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
  uploadTinyObjects,
  vacuum,
  walBytesSince,
  walLsn,
} from './stack.js';

const note = progressNote('bench');

// ---------------------------------------------------------------------------------------------
// Sizes and settings

const scale = Number(process.env.BENCH_SCALE ?? '1');
if (!(scale > 0 && scale <= 10))
  throw new Error(`BENCH_SCALE must be in (0, 10], not ${process.env.BENCH_SCALE}`);

const sizes = {
  /** (1) rows loaded by one run and by \copy. */
  loadRows: Math.max(8_000, Math.round(2_000_000 * scale)),
  loadFiles: 8,
  /** (2) 100-row files, and the same rows in `bigFiles` files. */
  smallFiles: Math.max(10, Math.round(10_000 * scale)),
  smallRowsPerFile: 100,
  bigFiles: 10,
  /** (3) objects a no-op run lists and finds already processed. */
  noopObjects: Number(process.env.BENCH_NOOP_OBJECTS ?? Math.max(1_000, Math.round(100_000 * scale))),
  /** PUTs in flight while uploading many objects. */
  uploadConcurrency: 64,
  noopRepetitions: 3,
};
if (!(Number.isSafeInteger(sizes.noopObjects) && sizes.noopObjects >= 1_000))
  throw new Error(`BENCH_NOOP_OBJECTS must be an integer ≥ 1000, not ${process.env.BENCH_NOOP_OBJECTS}`);
const smallRows = sizes.smallFiles * sizes.smallRowsPerFile;

/** Issue #14's targets. */
const targets = {
  copy_ratio: 1.0,
  copy_ratio_vs_2streams: 0.6,
  small_files_ratio: 2.0,
  noop_ratio: 1.3,
  peak_rss_mb: 300,
};

// ---------------------------------------------------------------------------------------------
// Measuring a phase: wall time, CPU by process, worker RSS

// ---------------------------------------------------------------------------------------------
// Data

interface DataFiles {
  load: { key: string; path: string }[];
  csv: string[];
  big: { key: string; path: string }[];
  jsonBytes: number;
  csvBytes: number;
}

async function generateData(dir: string): Promise<DataFiles> {
  await mkdir(dir, { recursive: true });
  const jsonFiles = async (prefix: string, ranges: RowRange[]) => {
    const files: { key: string; path: string }[] = [];
    let bytes = 0;
    for (const [i, range] of ranges.entries()) {
      const name = `part-${String(i).padStart(2, '0')}.jsonl`;
      const path = join(dir, `${prefix}-${name}`);
      bytes += await writeRows(path, range, jsonLine);
      files.push({ key: `${prefix}/${name}`, path });
    }
    return { files, bytes };
  };
  const load = await jsonFiles('load', splitRows(sizes.loadRows, sizes.loadFiles));
  // Two CSV halves: one \copy stream loads both in turn, two streams load one each.
  const csv: string[] = [];
  let csvBytes = 0;
  for (const [i, range] of splitRows(sizes.loadRows, 2).entries()) {
    const path = join(dir, `copy-${i}.csv`);
    csvBytes += await writeRows(path, range, csvLine);
    csv.push(path);
  }
  const big = await jsonFiles('big', splitRows(smallRows, sizes.bigFiles));
  return { load: load.files, csv, big: big.files, jsonBytes: load.bytes, csvBytes };
}

// ---------------------------------------------------------------------------------------------
// Checks: a figure from a run that did not load everything would be meaningless

/** Same rows in both tables: counts and sums over every column the two loads share. */
async function expectSameRows(sql: Sql, a: string, b: string): Promise<void> {
  const digest = (t: string) =>
    sql.unsafe(
      `select count(*)::text as n, sum(id)::text as ids, sum(user_id)::text as users, sum(amount)::text as amount,
              max(ts)::text as ts, sum(length(event) + length(tags::text) + length(payload::text))::text as text
       from ${t}`,
    );
  const [[da], [db]] = await Promise.all([digest(a), digest(b)]);
  if (JSON.stringify(da) !== JSON.stringify(db))
    throw new Error(`${a} and ${b} differ: ${JSON.stringify(da)} vs ${JSON.stringify(db)}`);
}

// ---------------------------------------------------------------------------------------------
// Phases

interface Context extends Stack {
  databaseUrl: string;
  copyClient: CopyClient;
}

const copyLabel = (client: CopyClient) => (client === 'psql' ? 'psql \\copy' : 'postgres.js COPY');

async function ingestionRun(
  ctx: Context,
  name: string,
  prefix: string,
  destination: string,
): Promise<Measured<RunJson>> {
  const id = await ctx.api.createIngestion({
    name,
    connectionId: ctx.connectionId,
    bucket: ctx.bucket,
    prefix,
    destination,
  });
  return ctx.meter.measure(() => ctx.api.runAndWait(id));
}

interface FileTiming {
  file: string;
  claimedS: number;
  loadS: number;
}

/**
 * When each file of a run was claimed (relative to the run's start) and how long its load took,
 * from processed_files: shows whether the lanes kept Postgres busy or waited on each other.
 * (processed_at is not used: it is set with now(), the load transaction's start.)
 */
async function fileTimeline(sql: Sql, runId: string): Promise<FileTiming[]> {
  return sql<FileTiming[]>`
    select regexp_replace(p.file_path, '^.*/', '') as file,
           extract(epoch from p.processing_started_at - r.started_at)::float8 as "claimedS",
           p.processing_duration_ms / 1000.0::float8 as "loadS"
    from autoloader.processed_files p join autoloader.runs r on r.id = p.run_id
    where p.run_id = ${runId}
    order by p.processing_started_at, p.file_path`;
}

async function phaseLoad(ctx: Context, data: DataFiles) {
  // The steady state of an ingestion: its table exists (a first run of one small file made it,
  // untimed), so with LOAD_DIRECT_COPY=true each large file can go by one COPY straight into its columns.
  note('(1) a first run of one small file creates the table');
  const seedKey = 'load/000-seed.jsonl';
  await putBuffer(ctx.s3, ctx.bucket, seedKey, Buffer.from(jsonLine(0)));
  const ingestionId = await ctx.api.createIngestion({
    name: 'load',
    connectionId: ctx.connectionId,
    bucket: ctx.bucket,
    prefix: 'load/',
    destination: 'bench.events_load',
  });
  expectRun(await ctx.api.runAndWait(ingestionId), { discovered: 1, processed: 1, records: 1 });
  // Its row goes (the file stays processed): the table then holds exactly the rows \copy loads.
  await ctx.sql`delete from bench.events_load where _source_file like ${'%/000-seed.jsonl'}`;

  note(`(1) uploading ${data.load.length} JSON-lines files (${int(data.jsonBytes / 2 ** 20)} MiB)`);
  await forEachLimit(data.load.length, 4, (i) =>
    putFile(ctx.s3, ctx.bucket, data.load[i]!.key, data.load[i]!.path),
  );

  note(
    `(1) ingestion run: ${int(sizes.loadRows)} rows in ${data.load.length} files, into the existing table`,
  );
  const { value: run, profile } = await withStatementProfile(ctx.sql, () =>
    ctx.meter.measure(() => ctx.api.runAndWait(ingestionId)),
  );
  expectRun(run.value, {
    discovered: data.load.length + 1,
    processed: data.load.length,
    records: sizes.loadRows,
  });
  const timeline = await fileTimeline(ctx.sql, run.value.id);
  await vacuum(ctx.sql, 'bench.events_load');

  const source = { schema: 'bench', table: 'events_load' };
  note(`(1) ${copyLabel(ctx.copyClient)} of the same rows as CSV, one stream`);
  await createCopyTarget(ctx.sql, source, 'bench_copy_target', columns);
  const copy = await ctx.meter.measure(() =>
    copyFiles({
      client: ctx.copyClient,
      sql: ctx.sql,
      databaseUrl: ctx.databaseUrl,
      target: { schema: 'bench', table: 'bench_copy_target' },
      columns,
      files: data.csv,
    }),
  );
  await vacuum(ctx.sql, 'bench.bench_copy_target');
  await expectSameRows(ctx.sql, 'bench.events_load', 'bench.bench_copy_target');

  // The run loads with RUN_FILE_PARALLELISM streams; two \copy streams show the limit at that
  // parallelism (context only: the target is set against one stream).
  note(`(1) ${copyLabel(ctx.copyClient)}, two streams`);
  await createCopyTarget(ctx.sql, source, 'bench_copy_target_2', columns);
  const copy2 = await ctx.meter.measure(() =>
    Promise.all(
      data.csv.map((file) =>
        copyFiles({
          client: ctx.copyClient,
          sql: ctx.sql,
          databaseUrl: ctx.databaseUrl,
          target: { schema: 'bench', table: 'bench_copy_target_2' },
          columns,
          files: [file],
        }),
      ),
    ),
  );
  await vacuum(ctx.sql, 'bench.bench_copy_target_2');
  await expectSameRows(ctx.sql, 'bench.events_load', 'bench.bench_copy_target_2');

  // The same two, into a table of the destination's shape (lineage columns and the _source_file
  // index): what separates the run from these is the loader, not the table (context for the targets).
  const shaped = async (name: string, streams: 1 | 2) => {
    await createShapedCopyTarget(ctx.sql, source, name);
    const copied = await ctx.meter.measure(() =>
      Promise.all(
        (streams === 1 ? [data.csv] : data.csv.map((f) => [f])).map((files) =>
          copyFiles({
            client: ctx.copyClient,
            sql: ctx.sql,
            databaseUrl: ctx.databaseUrl,
            target: { schema: 'bench', table: name },
            columns,
            files,
          }),
        ),
      ),
    );
    await vacuum(ctx.sql, `bench.${name}`);
    await expectSameRows(ctx.sql, 'bench.events_load', `bench.${name}`);
    return copied;
  };
  note(`(1) ${copyLabel(ctx.copyClient)} into a table of the destination's shape, one stream`);
  const copyShaped = await shaped('bench_copy_shaped', 1);
  note(`(1) ${copyLabel(ctx.copyClient)} into a table of the destination's shape, two streams`);
  const copyShaped2 = await shaped('bench_copy_shaped_2', 2);

  // An ingestion's first run: no table yet, so every file goes through the staging table (its
  // types are inferred from the rows themselves).
  note(`(1) first ingestion run into a new table: the same ${int(sizes.loadRows)} rows and the seed`);
  const first = await ingestionRun(ctx, 'load-first', 'load/', 'bench.events_first');
  expectRun(first.value, {
    discovered: data.load.length + 1,
    processed: data.load.length + 1,
    records: sizes.loadRows + 1,
  });
  await ctx.sql`delete from bench.events_first where _source_file like ${'%/000-seed.jsonl'}`;
  await vacuum(ctx.sql, 'bench.events_first');
  await expectSameRows(ctx.sql, 'bench.events_load', 'bench.events_first');
  return { run, profile, timeline, copy, copy2, copyShaped, copyShaped2, first };
}

async function phaseSmallFiles(ctx: Context, data: DataFiles) {
  note(`(2) uploading ${data.big.length} files and ${int(sizes.smallFiles)} small objects`);
  await forEachLimit(data.big.length, 4, (i) =>
    putFile(ctx.s3, ctx.bucket, data.big[i]!.key, data.big[i]!.path),
  );
  const ranges = splitRows(smallRows, sizes.smallFiles);
  const width = String(ranges.length - 1).length;
  const t0 = performance.now();
  await forEachLimit(ranges.length, sizes.uploadConcurrency, (i) =>
    putBuffer(
      ctx.s3,
      ctx.bucket,
      `small/f-${String(i).padStart(width, '0')}.jsonl`,
      jsonLines(ranges[i]!.first, ranges[i]!.count),
    ),
  );
  const smallPutsPerS = ranges.length / ((performance.now() - t0) / 1000);
  note(`(2) ${int(smallPutsPerS)} small PUTs/s`);

  note(`(2) ingestion run: ${int(smallRows)} rows in ${data.big.length} files`);
  const big = await ingestionRun(ctx, 'big-files', 'big/', 'bench.events_big');
  expectRun(big.value, { discovered: data.big.length, processed: data.big.length, records: smallRows });
  await vacuum(ctx.sql, 'bench.events_big');

  note(`(2) ingestion run: the same rows in ${int(ranges.length)} files`);
  const { value: small, profile } = await withStatementProfile(ctx.sql, () =>
    ingestionRun(ctx, 'small-files', 'small/', 'bench.events_small'),
  );
  expectRun(small.value, { discovered: ranges.length, processed: ranges.length, records: smallRows });
  await vacuum(ctx.sql, 'bench.events_small');
  await expectSameRows(ctx.sql, 'bench.events_big', 'bench.events_small');
  return { big, small, profile, smallPutsPerS };
}

async function phaseNoop(ctx: Context) {
  note(`(3) uploading ${int(sizes.noopObjects)} tiny objects (tar archives MinIO extracts)`);
  const upload = await ctx.meter.measure(() =>
    uploadTinyObjects(ctx.s3, ctx.bucket, 'noop/', sizes.noopObjects),
  );
  const putsPerS = sizes.noopObjects / (upload.ms / 1000);
  note(`(3) ${int(putsPerS)} tiny objects/s`);

  const ingestionId = await ctx.api.createIngestion({
    name: 'noop',
    connectionId: ctx.connectionId,
    bucket: ctx.bucket,
    prefix: 'noop/',
    destination: 'bench.events_noop',
  });
  await seedProcessedFiles(ctx, ingestionId, 'noop/');

  // Interleaved, so drift (MinIO caches warming, background load) affects both sides alike.
  const lists: Measured<number>[] = [];
  const runs: Measured<RunJson>[] = [];
  const wal: number[] = [];
  let profile: StepTime[] = [];
  for (let rep = 0; rep < sizes.noopRepetitions; rep++) {
    note(
      `(3) listing ${int(sizes.noopObjects)} objects alone, then a no-op run (${rep + 1}/${sizes.noopRepetitions})`,
    );
    const listed = await ctx.meter.measure(async () => (await listAll(ctx.s3, ctx.bucket, 'noop/')).count);
    if (listed.value !== sizes.noopObjects)
      throw new Error(`listed ${listed.value} objects, want ${sizes.noopObjects}`);
    lists.push(listed);
    // WAL from the run's start to its end (the CHECKPOINT before it excluded): what a no-op run
    // writes — its run row and history, plus whatever discovery changes in processed_files.
    let walBefore = '';
    const measured = await withStatementProfile(ctx.sql, () =>
      ctx.meter.measure(async () => {
        walBefore = await walLsn(ctx.sql);
        return ctx.api.runAndWait(ingestionId);
      }),
    );
    const run = measured.value;
    profile = measured.profile;
    wal.push(await walBytesSince(ctx.sql, walBefore));
    expectRun(run.value, { discovered: sizes.noopObjects, processed: 0, records: 0 });
    if (run.value.files_skipped !== sizes.noopObjects)
      throw new Error(`no-op run skipped ${run.value.files_skipped} files, want ${sizes.noopObjects}`);
    runs.push(run);
  }
  return { lists, runs, wal, profile, putsPerS, upload };
}

// ---------------------------------------------------------------------------------------------
// Report

function cpuRow(name: string, m: Measured<unknown>): string[] {
  return [name, secs(m.ms), ...processes.map((p) => m.cpu[p].toFixed(1))];
}

function profileTable(profile: StepTime[], wallMs: number): string {
  const total = profile.reduce((s, p) => s + p.ms, 0);
  return table(
    ['statement step', 'calls', 'total', 'share', 'per call'],
    [
      ...profile
        .filter((p) => p.ms >= total * 0.002)
        .map((p) => [
          p.step,
          int(p.calls),
          secs(p.ms),
          `${((p.ms / total) * 100).toFixed(1)} %`,
          `${(p.ms / p.calls).toFixed(2)} ms`,
        ]),
      ['all statements (sum over connections)', '', secs(total), '100 %', `wall ${secs(wallMs)}`],
    ],
  );
}

// ---------------------------------------------------------------------------------------------

async function main() {
  const settings = runSettings();
  const copyClient = chooseCopyClient();
  const { root, cleanups, cleanup } = await benchRoot(note);

  try {
    note(`scale ${scale}; data and services under ${root}`);
    const loadAvgStart = loadAverage();
    // Data generation (CPU) overlaps the services' start-up (mostly waiting); neither is timed.
    const [startedServices, generated] = await Promise.allSettled([
      startServices(root).then((s: Services) => {
        cleanups.push(s.stop);
        return s;
      }),
      generateData(join(root, 'data')),
    ]);
    if (startedServices.status === 'rejected') throw startedServices.reason;
    if (generated.status === 'rejected') throw generated.reason;
    const services = startedServices.value;
    const data = generated.value;
    note(`data: ${int(data.jsonBytes / 2 ** 20)} MiB JSON lines, ${int(data.csvBytes / 2 ** 20)} MiB CSV`);

    const stack = await openStack(root, services, settings, cleanups);
    const { worker } = stack;
    const ctx: Context = { ...stack, databaseUrl: services.databaseUrl, copyClient };

    const load = await phaseLoad(ctx, data);
    const smallFiles = await phaseSmallFiles(ctx, data);
    const vmHwmLoads = statusMb(worker.pid, 'VmHWM') ?? 0;
    const noop = await phaseNoop(ctx);
    const vmHwmEnd = statusMb(worker.pid, 'VmHWM') ?? 0;

    // ------------------------------------------------------------------ figures
    const runRowsPerS = sizes.loadRows / (load.run.ms / 1000);
    const copyRowsPerS = sizes.loadRows / (load.copy.ms / 1000);
    const copy2RowsPerS = sizes.loadRows / (load.copy2.ms / 1000);
    const shapedRowsPerS = sizes.loadRows / (load.copyShaped.ms / 1000);
    const shaped2RowsPerS = sizes.loadRows / (load.copyShaped2.ms / 1000);
    const noopRunMs = median(noop.runs.map((r) => r.ms));
    const listMs = median(noop.lists.map((r) => r.ms));
    // CPU used outside the bench's processes while timed steps ran, as a share of the machine:
    // a test suite running alongside slows both sides of a ratio, but not necessarily alike.
    const firstRowsPerS = sizes.loadRows / (load.first.ms / 1000);
    const timed: Measured<unknown>[] = [
      load.run,
      load.first,
      load.copy,
      load.copy2,
      load.copyShaped,
      load.copyShaped2,
      smallFiles.big,
      smallFiles.small,
      ...noop.lists,
      ...noop.runs,
    ];
    const otherCpuShare =
      timed.reduce((sum, m) => sum + m.cpu.other, 0) /
      ((timed.reduce((sum, m) => sum + m.ms, 0) / 1000) * os.availableParallelism());
    const peakRss = Math.max(
      load.run.rssPeakMb,
      load.first.rssPeakMb,
      smallFiles.big.rssPeakMb,
      smallFiles.small.rssPeakMb,
    );
    const figures = {
      copy_ratio: round(runRowsPerS / copyRowsPerS),
      copy_ratio_vs_2streams: round(runRowsPerS / copy2RowsPerS),
      small_files_ratio: round(smallFiles.small.ms / smallFiles.big.ms),
      noop_ratio: round(noopRunMs / listMs),
      peak_rss_mb: Math.round(peakRss),
    };
    const met = {
      copy_ratio: figures.copy_ratio >= targets.copy_ratio,
      copy_ratio_vs_2streams: figures.copy_ratio_vs_2streams >= targets.copy_ratio_vs_2streams,
      small_files_ratio: figures.small_files_ratio <= targets.small_files_ratio,
      noop_ratio: figures.noop_ratio <= targets.noop_ratio,
      peak_rss_mb: figures.peak_rss_mb <= targets.peak_rss_mb,
    };
    const psql = await psqlVersion();
    const machine = {
      nproc: os.availableParallelism(),
      memory_gib: round(os.totalmem() / 2 ** 30, 1),
      cpu: os.cpus()[0]?.model ?? 'unknown',
      postgres: stack.pgVersion,
      node: process.version,
      psql: psql ?? 'none',
      load_average_start: loadAvgStart,
      load_average_end: loadAverage(),
    };

    // ------------------------------------------------------------------ readable report
    /** A row of the steps table for one of the copy baselines of (1). */
    const copyRow = (what: string, ms: number, rowsPerS: number) => [
      `(1) ${copyLabel(copyClient)} ${what}`,
      int(sizes.loadRows),
      data.csv.length,
      secs(ms),
      int(rowsPerS),
      '',
    ];
    const out: string[] = [];
    out.push('Autoloader benchmark', '');
    out.push(
      table(
        ['machine', ''],
        [
          ['cores (nproc)', machine.nproc],
          ['memory', `${machine.memory_gib} GiB`],
          ['cpu', machine.cpu],
          ['postgres', machine.postgres],
          ['postgres flags', postgresFlags.filter((f) => f !== '-c').join(' ')],
          ['node', machine.node],
          ['copy client', copyClient === 'psql' ? `psql \\copy (${psql})` : 'postgres.js COPY FROM STDIN'],
          ['load average start / end', `${machine.load_average_start} / ${machine.load_average_end}`],
          ['BENCH_SCALE', scale],
          ...Object.entries(settings).map(([k, v]) => [k, v]),
        ],
        true,
      ),
      '',
    );
    const rowsPerS = (rows: number, ms: number) => int(rows / (ms / 1000));
    out.push(
      table(
        ['step', 'rows', 'files', 'time', 'rows/s', 'worker RSS peak'],
        [
          [
            '(1) ingestion run, JSON lines from MinIO, table exists',
            int(sizes.loadRows),
            data.load.length,
            secs(load.run.ms),
            int(runRowsPerS),
            `${int(load.run.rssPeakMb)} MB`,
          ],
          [
            '(1) first ingestion run, new table (staged)',
            int(sizes.loadRows),
            data.load.length,
            secs(load.first.ms),
            int(firstRowsPerS),
            `${int(load.first.rssPeakMb)} MB`,
          ],
          copyRow('CSV from disk, 1 stream', load.copy.ms, copyRowsPerS),
          copyRow('CSV from disk, 2 streams', load.copy2.ms, copy2RowsPerS),
          copyRow("into the destination's shape, 1 stream", load.copyShaped.ms, shapedRowsPerS),
          copyRow("into the destination's shape, 2 streams", load.copyShaped2.ms, shaped2RowsPerS),
          [
            `(2) ingestion run, ${data.big.length} files`,
            int(smallRows),
            data.big.length,
            secs(smallFiles.big.ms),
            rowsPerS(smallRows, smallFiles.big.ms),
            `${int(smallFiles.big.rssPeakMb)} MB`,
          ],
          [
            `(2) ingestion run, ${int(sizes.smallFiles)} small files`,
            int(smallRows),
            int(sizes.smallFiles),
            secs(smallFiles.small.ms),
            rowsPerS(smallRows, smallFiles.small.ms),
            `${int(smallFiles.small.rssPeakMb)} MB`,
          ],
          ...noop.lists.map((l, i) => [
            `(3) ListObjectsV2 alone, #${i + 1}`,
            '',
            int(sizes.noopObjects),
            secs(l.ms),
            '',
            '',
          ]),
          ...noop.runs.map((r, i) => [
            `(3) no-op run, #${i + 1} (WAL ${int(noop.wal[i]! / 1024)} KiB)`,
            '0',
            int(sizes.noopObjects),
            secs(r.ms),
            '',
            `${int(r.rssPeakMb)} MB`,
          ]),
        ],
      ),
      '',
    );
    out.push(
      `uploads: ${int(smallFiles.smallPutsPerS)} PUTs/s of 22 KB objects (${sizes.uploadConcurrency} in flight), ` +
        `${int(noop.putsPerS)} tiny objects/s through extracted tar archives; ` +
        `worker VmHWM ${int(vmHwmLoads)} MB after (1)+(2), ${int(vmHwmEnd)} MB at the end`,
      '',
    );
    out.push(
      'CPU seconds by process during each step (2 cores = 2 CPU-seconds per wall second; "other" = not ours)',
      table(
        ['step', 'wall', ...processes],
        [
          cpuRow('(1) ingestion run', load.run),
          cpuRow('(1) first run, new table', load.first),
          cpuRow('(1) \\copy 1 stream', load.copy),
          cpuRow('(1) \\copy 2 streams', load.copy2),
          cpuRow('(1) \\copy, our shape, 1 stream', load.copyShaped),
          cpuRow('(1) \\copy, our shape, 2 streams', load.copyShaped2),
          cpuRow(`(2) run, ${data.big.length} files`, smallFiles.big),
          cpuRow(`(2) run, ${int(sizes.smallFiles)} files`, smallFiles.small),
          cpuRow(`(3) upload ${int(sizes.noopObjects)} tiny objects (tar)`, noop.upload),
          cpuRow('(3) listing (last)', noop.lists.at(-1)!),
          cpuRow('(3) no-op run (last)', noop.runs.at(-1)!),
        ],
      ),
      '',
    );
    out.push('Postgres statement time, (1) ingestion run', profileTable(load.profile, load.run.ms), '');
    out.push(
      '(1) files of the ingestion run (claimed: seconds from the run start; load: processing_duration_ms)',
      table(
        ['file', 'claimed', 'load'],
        load.timeline.map((f) => [f.file, f.claimedS.toFixed(2), f.loadS.toFixed(2)]),
      ),
      '',
    );
    out.push(
      `Postgres statement time, (2) run over ${int(sizes.smallFiles)} files`,
      profileTable(smallFiles.profile, smallFiles.small.ms),
      '',
    );
    out.push(
      'Postgres statement time, (3) no-op run (last)',
      profileTable(noop.profile, noop.runs.at(-1)!.ms),
      '',
    );
    const verdict = (ok: boolean) => (ok ? 'met' : 'MISSED');
    out.push(
      table(
        ['figure', 'value', 'target', ''],
        [
          [
            'copy_ratio (run rows/s ÷ \\copy rows/s, 1 stream)',
            figures.copy_ratio,
            `≥ ${targets.copy_ratio}`,
            verdict(met.copy_ratio),
          ],
          [
            'copy_ratio_vs_2streams (run rows/s ÷ \\copy rows/s, 2 streams)',
            figures.copy_ratio_vs_2streams,
            `≥ ${targets.copy_ratio_vs_2streams}`,
            verdict(met.copy_ratio_vs_2streams),
          ],
          [
            "context: run ÷ \\copy into the destination's shape, 1 / 2 streams",
            `${round(runRowsPerS / shapedRowsPerS)} / ${round(runRowsPerS / shaped2RowsPerS)}`,
            '',
            '',
          ],
          [
            'small_files_ratio (small-file time ÷ big-file time)',
            figures.small_files_ratio,
            `≤ ${targets.small_files_ratio}`,
            verdict(met.small_files_ratio),
          ],
          [
            'noop_ratio (no-op run ÷ listing, medians)',
            figures.noop_ratio,
            `≤ ${targets.noop_ratio}`,
            verdict(met.noop_ratio),
          ],
          [
            'peak_rss_mb (worker, during (1) and (2))',
            figures.peak_rss_mb,
            `≤ ${targets.peak_rss_mb}`,
            verdict(met.peak_rss_mb),
          ],
        ],
      ),
      '',
    );
    if (otherCpuShare > 0.1)
      out.push(
        `WARNING: other processes used ${Math.round(otherCpuShare * 100)} % of the machine's CPU while steps were timed; ` +
          'absolute times are inflated and ratios less reliable. Rerun on a quiet machine.',
        '',
      );
    process.stdout.write(`${out.join('\n')}\n`);

    const json = {
      ...figures,
      targets_met: met,
      scale,
      other_cpu_share: round(otherCpuShare),
      load_rows: sizes.loadRows,
      load_files: data.load.length,
      load_run_s: round(load.run.ms / 1000),
      load_run_rows_per_s: Math.round(runRowsPerS),
      copy_client: copyClient,
      copy_s: round(load.copy.ms / 1000),
      copy_rows_per_s: Math.round(copyRowsPerS),
      copy_2streams_rows_per_s: Math.round(copy2RowsPerS),
      copy_shaped_rows_per_s: Math.round(shapedRowsPerS),
      copy_shaped_2streams_rows_per_s: Math.round(shaped2RowsPerS),
      copy_ratio_same_shape: round(runRowsPerS / shapedRowsPerS),
      copy_ratio_same_shape_vs_2streams: round(runRowsPerS / shaped2RowsPerS),
      first_run_s: round(load.first.ms / 1000),
      first_run_rows_per_s: Math.round(firstRowsPerS),
      first_run_copy_ratio: round(firstRowsPerS / copyRowsPerS),
      small_files: sizes.smallFiles,
      small_files_rows: smallRows,
      small_files_s: round(smallFiles.small.ms / 1000),
      big_files_s: round(smallFiles.big.ms / 1000),
      noop_objects: sizes.noopObjects,
      noop_run_s: round(noopRunMs / 1000),
      noop_list_s: round(listMs / 1000),
      noop_runs_s: noop.runs.map((r) => round(r.ms / 1000)),
      noop_lists_s: noop.lists.map((r) => round(r.ms / 1000)),
      noop_wal_bytes: Math.round(median(noop.wal)),
      rss_peak_mb: {
        load: Math.round(load.run.rssPeakMb),
        first_load: Math.round(load.first.rssPeakMb),
        big_files: Math.round(smallFiles.big.rssPeakMb),
        small_files: Math.round(smallFiles.small.rssPeakMb),
        noop: Math.round(Math.max(...noop.runs.map((r) => r.rssPeakMb))),
        vm_hwm_after_loads: Math.round(vmHwmLoads),
      },
      run_settings: settings,
      postgres_flags: postgresFlags.filter((f) => f !== '-c'),
      machine,
    };
    process.stdout.write(`${JSON.stringify(json)}\n`);
  } finally {
    await cleanup();
  }
}

runMain('bench', main);
