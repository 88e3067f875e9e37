import { fmtClock, fmtInt } from './format.js';
import type { Io } from './output.js';

/** What a run reports while it goes (GET /runs/{id} `progress`), stamped with when we saw it. */
export interface ProgressSample {
  at: number;
  filesTotal: number;
  filesDone: number;
  filesFailed: number;
  rows: number;
}

export interface ProgressView {
  filesTotal: number;
  filesDone: number;
  filesFailed: number;
  rows: number;
  rowsPerSecond: number | null;
  etaSeconds: number | null;
}

/** Rates over the last few seconds only, so the ETA follows a run that speeds up or slows down. */
const WINDOW_MS = 10_000;

/** Turns successive samples into rates and an ETA; pure given the samples' timestamps. */
export class RateTracker {
  private samples: ProgressSample[] = [];

  add(sample: ProgressSample): ProgressView {
    this.samples.push(sample);
    while (this.samples.length > 2 && sample.at - this.samples[1]!.at >= WINDOW_MS) this.samples.shift();
    const first = this.samples[0]!;
    const seconds = (sample.at - first.at) / 1000;
    // Under half a second apart the rate is noise; say nothing rather than something wild.
    const known = seconds >= 0.5;
    const rowsPerSecond = known ? Math.max(0, sample.rows - first.rows) / seconds : null;
    const filesPerSecond = known ? Math.max(0, sample.filesDone - first.filesDone) / seconds : null;
    const remaining = Math.max(0, sample.filesTotal - sample.filesDone);
    const etaSeconds =
      remaining === 0 && sample.filesTotal > 0
        ? 0
        : filesPerSecond && filesPerSecond > 0
          ? remaining / filesPerSecond
          : null;
    return {
      filesTotal: sample.filesTotal,
      filesDone: sample.filesDone,
      filesFailed: sample.filesFailed,
      rows: sample.rows,
      rowsPerSecond,
      etaSeconds,
    };
  }
}

function figures(v: ProgressView, sep: string): string {
  const parts = [
    v.filesTotal === 0 ? 'discovering files' : `${fmtInt(v.filesDone)}/${fmtInt(v.filesTotal)} files`,
    `${fmtInt(v.rows)} rows`,
  ];
  if (v.rowsPerSecond !== null) parts.push(`${fmtInt(v.rowsPerSecond)} rows/s`);
  if (v.etaSeconds !== null) parts.push(`ETA ${fmtClock(v.etaSeconds)}`);
  if (v.filesFailed > 0) parts.push(`${fmtInt(v.filesFailed)} failed`);
  return parts.join(sep);
}

/**
 * The live single line drawn on a terminal: a bar sized to what is left of the width, then the
 * figures. On a narrow terminal the bar goes first: the figures are what matters. The line stays
 * shorter than the width, since a wrapped line cannot be redrawn with `\r`.
 */
export function progressBarLine(v: ProgressView, width: number): string {
  const text = figures(v, '  ');
  const barWidth = Math.min(20, width - text.length - 4);
  if (barWidth < 5) return text.slice(0, Math.max(width - 1, 20));
  const fraction = v.filesTotal > 0 ? Math.min(1, v.filesDone / v.filesTotal) : 0;
  const filled = Math.floor(fraction * barWidth);
  return `[${'#'.repeat(filled)}${'-'.repeat(barWidth - filled)}] ${text}`;
}

/** The line written to a log or a pipe, where `\r` redraws would be noise. */
export function progressPlainLine(label: string, v: ProgressView): string {
  return `${label}: ${figures(v, ', ')}`;
}

export interface ProgressReporter {
  update(label: string, sample: ProgressSample): void;
  /** A line of its own (a status change, the final summary), clearing the live bar first. */
  note(text: string): void;
  finish(): void;
}

/** Plain lines on a pipe come at most this often: enough to see it move, little enough for a log. */
const PLAIN_EVERY_MS = 5_000;

export function createProgressReporter(io: Io, now: () => number = Date.now): ProgressReporter {
  const rates = new RateTracker();
  let drawn = false;
  let lastPlain = Number.NEGATIVE_INFINITY;
  const clear = () => {
    if (drawn) io.err('\r\x1b[K');
    drawn = false;
  };
  return {
    update(label, sample) {
      const view = rates.add(sample);
      if (io.progressTty) {
        io.err(`\r${progressBarLine(view, io.columns)}\x1b[K`);
        drawn = true;
      } else if (now() - lastPlain >= PLAIN_EVERY_MS) {
        lastPlain = now();
        io.err(`${progressPlainLine(label, view)}\n`);
      }
    },
    note(text) {
      clear();
      io.err(`${text}\n`);
    },
    finish: clear,
  };
}
