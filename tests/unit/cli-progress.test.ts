import { describe, expect, it } from 'vitest';
import type { Io } from '../../src/cli/output.js';
import {
  createProgressReporter,
  type ProgressSample,
  type ProgressView,
  progressBarLine,
  progressPlainLine,
  RateTracker,
} from '../../src/cli/progress.js';

const sample = (
  at: number,
  filesDone: number,
  rows: number,
  filesTotal = 100,
  filesFailed = 0,
): ProgressSample => ({
  at,
  filesTotal,
  filesDone,
  filesFailed,
  rows,
});

describe('RateTracker', () => {
  it('has no rate or ETA from a single sample', () => {
    const v = new RateTracker().add(sample(0, 10, 1000));
    expect(v.rowsPerSecond).toBeNull();
    expect(v.etaSeconds).toBeNull();
  });

  it('derives rows/s and an ETA from the files still to do', () => {
    const t = new RateTracker();
    t.add(sample(0, 0, 0));
    const v = t.add(sample(10_000, 20, 50_000));
    expect(v.rowsPerSecond).toBe(5000);
    // 2 files/s, 80 left.
    expect(v.etaSeconds).toBe(40);
  });

  it('follows the recent rate, not the average since the start', () => {
    const t = new RateTracker();
    t.add(sample(0, 0, 0));
    t.add(sample(10_000, 10, 10_000));
    t.add(sample(20_000, 50, 50_000));
    const v = t.add(sample(30_000, 90, 90_000));
    // The first 10 s (1 file/s) have left the window: 4 files/s over the last 20 s.
    expect(v.rowsPerSecond).toBe(4000);
    expect(v.etaSeconds).toBe(2.5);
  });

  it('says ETA 0 once every file is done', () => {
    const t = new RateTracker();
    t.add(sample(0, 100, 10));
    expect(t.add(sample(5_000, 100, 10)).etaSeconds).toBe(0);
  });
});

const view = (over: Partial<ProgressView> = {}): ProgressView => ({
  filesTotal: 100,
  filesDone: 45,
  filesFailed: 0,
  rows: 12_345,
  rowsPerSecond: 1234.4,
  etaSeconds: 42,
  ...over,
});

describe('progress lines', () => {
  it('draws a bar filled in proportion to files done, then files, rows, rows/s, ETA', () => {
    const line = progressBarLine(view({ filesDone: 50 }), 120);
    expect(line).toBe(
      `[${'#'.repeat(10)}${'-'.repeat(10)}] 50/100 files  12,345 rows  1,234 rows/s  ETA 0:42`,
    );
  });

  it('shrinks the bar on a narrower terminal, then drops it, and never reaches the width', () => {
    const text = '45/100 files  12,345 rows  1,234 rows/s  ETA 0:42';
    const narrower = progressBarLine(view(), text.length + 14);
    expect(narrower).toBe(`[####------] ${text}`);
    expect(narrower.length).toBeLessThan(text.length + 14);
    expect(progressBarLine(view(), text.length + 5)).toBe(text);
    expect(progressBarLine(view(), 30)).toBe(text.slice(0, 29));
  });

  it('mentions failures, and discovery before any file is queued', () => {
    expect(progressBarLine(view({ filesFailed: 3 }), 200)).toMatch(/ETA 0:42 {2}3 failed$/);
    expect(
      progressPlainLine(
        'run r',
        view({ filesTotal: 0, filesDone: 0, rowsPerSecond: null, etaSeconds: null, rows: 0 }),
      ),
    ).toBe('run r: discovering files, 0 rows');
  });

  it('plain lines carry the same figures, comma-separated', () => {
    expect(progressPlainLine('run r', view())).toBe(
      'run r: 45/100 files, 12,345 rows, 1,234 rows/s, ETA 0:42',
    );
  });
});

function fakeIo(progressTty: boolean) {
  const err: string[] = [];
  const io: Io = {
    out: () => undefined,
    err: (t) => err.push(t),
    interactive: false,
    progressTty,
    columns: 100,
    ask: async () => null,
    env: {},
  };
  return { io, err };
}

describe('createProgressReporter', () => {
  it('on a terminal redraws one line with \\r and clears it before a note', () => {
    const { io, err } = fakeIo(true);
    const r = createProgressReporter(io, () => 0);
    r.update('run r', sample(0, 1, 10));
    r.update('run r', sample(1000, 2, 20));
    r.note('done');
    expect(err).toHaveLength(4);
    expect(err[0]!.startsWith('\r[')).toBe(true);
    expect(err[0]).toContain(' 1/100 files');
    expect(err[0]!.endsWith('\x1b[K')).toBe(true);
    expect(err[1]).toMatch(/^\r\[.*2\/100 files/);
    expect(err.slice(2)).toEqual(['\r\x1b[K', 'done\n']);
  });

  it('on a pipe writes plain lines, at most one every 5 seconds', () => {
    const { io, err } = fakeIo(false);
    let now = 0;
    const r = createProgressReporter(io, () => now);
    for (let i = 0; i < 12; i++) {
      now = i * 1000;
      r.update('run r', sample(now, i, i * 10));
    }
    expect(err).toEqual([
      'run r: 0/100 files, 0 rows\n',
      'run r: 5/100 files, 50 rows, 10 rows/s, ETA 1:35\n',
      'run r: 10/100 files, 100 rows, 10 rows/s, ETA 1:30\n',
    ]);
    expect(err.join('')).not.toContain('\r');
  });
});
