/**
 * Linux /proc readings: a process's resident memory, and the CPU time a whole service (a process
 * and its children) has used, so each phase can say which process the cores were busy in.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/** Clock ticks per second of /proc/<pid>/stat times (100 on every mainstream Linux). */
const ticksPerSecond = (() => {
  const out = execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim();
  const n = Number(out);
  return Number.isFinite(n) && n > 0 ? n : 100;
})();

function isGone(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  // ENOENT: the process exited; ESRCH: it is exiting while we read.
  return code === 'ENOENT' || code === 'ESRCH';
}

/** A field of /proc/<pid>/status in MiB (VmRSS, VmHWM), or undefined when the process is gone. */
export function statusMb(pid: number, field: 'VmRSS' | 'VmHWM'): number | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch (err) {
    if (isGone(err)) return undefined;
    throw err;
  }
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
  return m ? Number(m[1]) / 1024 : undefined;
}

interface Stat {
  pid: number;
  ppid: number;
  /** utime + stime of the process itself, seconds. */
  own: number;
  /** cutime + cstime: children it has already reaped (postmaster reaps exited backends). */
  reaped: number;
}

function readStat(pid: number): Stat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch (err) {
    if (isGone(err)) return undefined;
    throw err;
  }
  // The command name (field 2) may contain spaces and parentheses: split after its last ')'.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const num = (i: number) => Number(rest[i - 3]);
  return {
    pid,
    ppid: num(4),
    own: (num(14) + num(15)) / ticksPerSecond,
    reaped: (num(16) + num(17)) / ticksPerSecond,
  };
}

function allPids(): number[] {
  return readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n))
    .map(Number);
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch (err) {
    if (isGone(err)) return '';
    throw err;
  }
}

/** The pid of the process whose command line contains `needle` (e.g. a service's data dir). */
export function findPid(needle: string): number | undefined {
  return allPids().find((pid) => pid !== process.pid && cmdline(pid).includes(needle));
}

/**
 * CPU seconds used so far by `root` and all its live descendants, plus what the tree has already
 * reaped. Differences between two readings give the CPU a service spent in between, including
 * Postgres backends that came and went.
 */
export function treeCpuSeconds(root: number): number {
  const stats = allPids()
    .map(readStat)
    .filter((s): s is Stat => s !== undefined);
  const children = new Map<number, Stat[]>();
  for (const s of stats) {
    const list = children.get(s.ppid) ?? [];
    list.push(s);
    children.set(s.ppid, list);
  }
  const self = stats.find((s) => s.pid === root);
  if (!self) return 0;
  let total = 0;
  const queue = [self];
  while (queue.length > 0) {
    const s = queue.pop()!;
    total += s.own + s.reaped;
    queue.push(...(children.get(s.pid) ?? []));
  }
  return total;
}

/** Samples a process's VmRSS every `intervalMs`; `peak()` is the highest sample since `reset()`. */
export class RssSampler {
  private max = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly pid: number,
    intervalMs = 200,
  ) {
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
  }

  private sample(): void {
    const rss = statusMb(this.pid, 'VmRSS');
    if (rss !== undefined && rss > this.max) this.max = rss;
  }

  reset(): void {
    this.max = 0;
    this.sample();
  }

  peak(): number {
    this.sample();
    return this.max;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

/**
 * CPU seconds the whole machine has been busy (all cores, not idle or waiting on I/O). Minus what
 * the bench's own processes used, it shows load from elsewhere (a test suite running alongside).
 */
export function machineBusySeconds(): number {
  const first = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
  const [, ...values] = first.trim().split(/\s+/);
  const n = values.map(Number);
  // user nice system idle iowait irq softirq steal (guest time is already inside user).
  const busy = (n[0] ?? 0) + (n[1] ?? 0) + (n[2] ?? 0) + (n[5] ?? 0) + (n[6] ?? 0) + (n[7] ?? 0);
  return busy / ticksPerSecond;
}

export function loadAverage(): string {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}
