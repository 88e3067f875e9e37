/**
 * `npm run bench:memory`: where the worker's memory goes over repeated small-file runs. Each round
 * loads MEMORY_FILES (2,000) new files of 100 rows into a table of its own and prints the worker's
 * peak RSS during the run and, after it, its resident memory by kind (/proc/<pid>/status and smaps):
 * `[heap]` is glibc's main arena, `[anon]` V8's heaps, thread arenas and other anonymous maps. A
 * figure that keeps rising round after round is a leak; one that settles is a high-water mark.
 *
 * Run by hand (a diagnosis, not a target). The worker runs with the bench's settings, the README's
 * production allocator tuning included; BENCH_MALLOC=default runs it on glibc's defaults instead.
 */
import { readFileSync } from 'node:fs';
import { jsonLine } from './data.js';
import { int, table } from './report.js';
import { putBuffer } from './s3.js';
import { startServices } from './services.js';
import {
  benchRoot,
  expectRun,
  openStack,
  progressNote,
  runMain,
  runSettings,
  smallFilesRun,
} from './stack.js';

const note = progressNote('memory');
const positive = (name: string, fallback: number) => {
  const n = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer`);
  return n;
};
const files = positive('MEMORY_FILES', 2_000);
const rounds = positive('MEMORY_ROUNDS', 6);
const rowsPerFile = 100;

/** Resident MiB of a process: totals from status, and smaps' Rss summed by mapping name. */
function residentMb(pid: number) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) / 1024;
  const byName = new Map<string, number>();
  let name = '';
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const mapping = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (mapping) name = mapping[1] || '[anon]';
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss) byName.set(name, (byName.get(name) ?? 0) + Number(rss[1]) / 1024);
  }
  return {
    rss: field('VmRSS'),
    anon: field('RssAnon'),
    file: field('RssFile'),
    mainArena: byName.get('[heap]') ?? 0,
    anonMaps: byName.get('[anon]') ?? 0,
  };
}

async function main() {
  const settings = runSettings();
  const { root, cleanups, cleanup } = await benchRoot(note);
  try {
    const services = await startServices(root);
    cleanups.push(services.stop);
    const s = await openStack(root, services, settings, cleanups);
    const rows: (string | number)[][] = [];
    const row = (what: string, ms: string, peak: string) => {
      const m = residentMb(s.worker.pid);
      rows.push([what, ms, peak, ...[m.rss, m.anon, m.file, m.mainArena, m.anonMaps].map((v) => int(v))]);
    };
    row('idle, before any run', '', '');
    for (let r = 0; r < rounds; r++) {
      const prefix = `round-${r}/`;
      note(`round ${r + 1} of ${rounds}: ${int(files)} files`);
      await putBuffer(s.s3, s.bucket, `${prefix}000-seed.jsonl`, Buffer.from(jsonLine(0)));
      const id = await s.api.createIngestion({
        name: `memory_${r}`,
        connectionId: s.connectionId,
        bucket: s.bucket,
        prefix,
        destination: `bench.memory_${r}`,
      });
      expectRun(await s.api.runAndWait(id), { discovered: 1, processed: 1, records: 1 });
      const run = await smallFilesRun(s, id, prefix, files, rowsPerFile);
      row(`round ${r + 1}: ${int(files)} files`, `${(run.ms / 1000).toFixed(2)} s`, int(run.rssPeakMb));
    }
    process.stdout.write(
      `${table(
        ['worker memory (MiB)', 'run', 'peak RSS', 'RSS after', 'anon', 'file', '[heap]', '[anon]'],
        rows,
      )}\n\n${table(['setting', ''], Object.entries(settings))}\n`,
    );
  } finally {
    await cleanup();
  }
}

runMain('memory', main);
