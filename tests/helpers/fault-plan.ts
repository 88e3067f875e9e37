/**
 * The fault schedule of tests/integration/fault-loop.test.ts, drawn from one seeded PRNG: a seed and
 * a fault count name exactly one schedule, so a failing loop can be replayed by setting
 * FAULT_SEED and FAULT_COUNT.
 *
 * A fault's moment is a point of progress ("once N of the run's files are done"), never a time: the
 * loop waits on that condition, so the schedule means the same thing on a fast or a loaded machine.
 */
export const faultKinds = ['kill-worker', 'restart-temporal', 'restart-postgres'] as const;
export type FaultKind = (typeof faultKinds)[number];

export interface PlannedFault {
  /** 1-based position in the schedule. */
  n: number;
  kind: FaultKind;
  /** The fault fires once at least this many files are done (SUCCESS or FAILED). */
  afterFilesDone: number;
}

export interface FaultSettings {
  seed: number;
  count: number;
}

/** The CI schedule, unless FAULT_SEED / FAULT_COUNT say otherwise. */
export const defaultFaultSettings: FaultSettings = { seed: 20261201, count: 10 };

export function faultSettingsFromEnv(env: NodeJS.ProcessEnv): FaultSettings {
  return {
    seed: positiveInteger(env, 'FAULT_SEED', defaultFaultSettings.seed),
    count: positiveInteger(env, 'FAULT_COUNT', defaultFaultSettings.count),
  };
}

function positiveInteger(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < 1)
    throw new Error(`${name} must be a positive integer, not ${raw}`);
  return value;
}

/** mulberry32: tiny, and the same sequence for a seed on every platform and Node version. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * `count` faults at progress points drawn uniformly from [from, to] × totalFiles, in order. Every
 * kind appears at least once when there are enough faults; the rest are drawn at random, and close
 * points make faults land back to back (one during the recovery from another), which is wanted.
 */
export function planFaults(opts: {
  settings: FaultSettings;
  totalFiles: number;
  /** Fractions of totalFiles: after the runs have started, before they can end. */
  window: { from: number; to: number };
}): PlannedFault[] {
  const random = seededRandom(opts.settings.seed);
  const { count } = opts.settings;
  const kinds: FaultKind[] = Array.from({ length: count }, (_, i) =>
    i < faultKinds.length ? faultKinds[i]! : faultKinds[Math.floor(random() * faultKinds.length)]!,
  );
  // Fisher-Yates, so that the guaranteed kinds are not always the first three faults.
  for (let i = kinds.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [kinds[i], kinds[j]] = [kinds[j]!, kinds[i]!];
  }
  const lo = Math.ceil(opts.window.from * opts.totalFiles);
  const hi = Math.floor(opts.window.to * opts.totalFiles);
  const points = Array.from({ length: count }, () => lo + Math.floor(random() * (hi - lo + 1))).sort(
    (a, b) => a - b,
  );
  return kinds.map((kind, i) => ({ n: i + 1, kind, afterFilesDone: points[i]! }));
}

/** One line per fault, for the test's log. */
export function describePlan(plan: PlannedFault[]): string {
  return plan.map((f) => `  #${f.n} ${f.kind} after ${f.afterFilesDone} files done`).join('\n');
}
