import type { OperationJson, OperationStep, RefreshResponseJson, RunJson } from './types.js';

const int = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

export const fmtInt = (n: number | null | undefined): string => (n == null ? '-' : int.format(n));

/** "1 file", "3 files". */
export const count = (n: number, noun: string): string => `${fmtInt(n)} ${noun}${n === 1 ? '' : 's'}`;

/** 5400 → "1h30m": how `--every` takes it. */
export function fmtInterval(seconds: number): string {
  const parts: string[] = [];
  let rest = seconds;
  for (const [unit, size] of [
    ['d', 86_400],
    ['h', 3600],
    ['m', 60],
  ] as const) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
  }
  if (rest > 0 || parts.length === 0) parts.push(`${rest}s`);
  return parts.join('');
}

export function fmtBytes(n: number | null | undefined): string {
  if (n == null) return '-';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(v < 10 ? 1 : 0)} ${units[u]}`;
}

/** 0:42, 12:05, 1:02:03 — compact enough for a one-line progress bar. */
export function fmtClock(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

export function fmtDurationMs(ms: number | null | undefined): string {
  if (ms == null) return '-';
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return fmtClock(ms / 1000);
}

/** A plain rendering of a JSON value for one table cell or key-value line. */
export function fmtValue(v: unknown): string {
  if (v === null || v === undefined) return '-';
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  if (typeof v === 'number') return Number.isInteger(v) ? fmtInt(v) : String(v);
  if (typeof v === 'string') return v;
  return JSON.stringify(v);
}

/** Left-aligned columns separated by two spaces; the last column is never padded (it may be long). */
export function table(headers: string[], rows: string[][], indent = ''): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    `${indent}${cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd()}`;
  return `${[line(headers), ...rows.map(line)].join('\n')}\n`;
}

export function keyValues(pairs: [string, unknown][], indent = ''): string {
  const width = Math.max(0, ...pairs.map(([k]) => k.length));
  return pairs.map(([k, v]) => `${indent}${k.padEnd(width)}  ${fmtValue(v)}\n`).join('');
}

const detailsText = (details: Record<string, unknown> | undefined): string =>
  Object.entries(details ?? {})
    .map(([k, v]) => `${k}=${fmtValue(v)}`)
    .join(', ');

function impactPairs(impact: RefreshResponseJson['impact']): [string, unknown][] {
  if (!impact) return [];
  const pairs: [string, unknown][] = [['files to process', impact.files_to_process]];
  if (impact.files_skipped !== undefined) pairs.push(['files skipped', impact.files_skipped]);
  pairs.push(
    [
      'data size',
      impact.estimated_data_size_gb === undefined ? undefined : `${impact.estimated_data_size_gb} GB`,
    ],
    [
      'estimated cost',
      impact.estimated_cost_usd === undefined ? undefined : `$${impact.estimated_cost_usd.toFixed(2)}`,
    ],
    [
      'estimated duration',
      impact.estimated_duration_minutes === undefined
        ? undefined
        : `${impact.estimated_duration_minutes} min`,
    ],
  );
  return pairs;
}

function listSection(title: string, items: string[] | undefined, bullet: string): string {
  if (!items || items.length === 0) return '';
  return `\n${title}\n${items.map((w) => `  ${bullet} ${w}\n`).join('')}`;
}

/**
 * Seed 001's dry-run body as the user reads it: the steps that would run, the impact, warnings and
 * notes, and the command that would proceed.
 */
export function dryRunPreview(title: string, body: RefreshResponseJson, proceed: string): string {
  const steps = body.would_perform ?? [];
  let text = `Dry run: ${title} (nothing was changed)\n`;
  if (steps.length > 0) {
    text += `\nWould perform\n${table(
      ['STEP', 'DETAILS'],
      steps.map((s) => [s.operation, detailsText(s.details)]),
      '  ',
    )}`;
  }
  const impact = impactPairs(body.impact);
  if (impact.length > 0) text += `\nImpact\n${keyValues(impact, '  ')}`;
  text += listSection('Warnings', body.warnings, '!');
  text += listSection('Notes', body.notes, '-');
  return `${text}\nTo proceed: ${proceed}\n`;
}

export function stepsTable(steps: OperationStep[] | undefined): string {
  if (!steps || steps.length === 0) return '  (no steps recorded yet)\n';
  return table(
    ['STEP', 'STATUS', 'AT', 'DETAILS'],
    steps.map((s) => [
      s.operation,
      s.status,
      s.timestamp ?? '',
      s.error ? `${s.error}${s.error_code ? ` (${s.error_code})` : ''}` : detailsText(s.details),
    ]),
    '  ',
  );
}

/** The answer to an accepted (or partially failed) refresh request. */
export function refreshAccepted(title: string, body: RefreshResponseJson): string {
  let text = `${title}: ${body.status}${body.message ? ` — ${body.message}` : ''}\n`;
  const pairs: [string, unknown][] = [];
  if (body.operation_id) pairs.push(['operation', body.operation_id]);
  if (body.run_id) pairs.push(['run', body.run_id]);
  text += keyValues(pairs, '  ');
  // A drop's details are its one step's details: show them once.
  if (body.details) text += `\nDetails\n${keyValues(Object.entries(body.details), '  ')}`;
  else if (body.operations) text += `\nSteps\n${stepsTable(body.operations)}`;
  text += listSection('Warnings', body.warnings, '!');
  text += listSection('Notes', body.notes, '-');
  if (body.recovery) {
    text += `\nRecovery\n${keyValues(
      Object.entries(body.recovery).filter(([, v]) => v !== undefined),
      '  ',
    )}`;
  }
  return text;
}

export function operationDetails(op: OperationJson): string {
  let text = `Operation ${op.id}: ${op.type ?? 'operation'} ${op.status}\n`;
  text += keyValues(
    [
      ['ingestion', op.ingestion_id],
      ['run', op.run_id],
      ['created', op.created_at],
      ['finished', op.finished_at],
      ...(op.error ? ([['error', op.error]] as [string, unknown][]) : []),
    ],
    '  ',
  );
  text += `\nSteps\n${stepsTable(op.operations)}`;
  const impact = impactPairs(op.impact);
  if (impact.length > 0) text += `\nImpact\n${keyValues(impact, '  ')}`;
  text += listSection('Warnings', op.warnings, '!');
  text += listSection('Notes', op.notes, '-');
  return text;
}

/** One line for a finished run: the figures finishRun froze. */
export function runSummary(run: RunJson): string {
  const parts = [
    `${count(run.files_processed, 'file')} loaded`,
    `${fmtInt(run.files_failed)} failed`,
    `${fmtInt(run.files_skipped)} skipped`,
    count(run.records_written, 'row'),
    `${fmtBytes(run.bytes_read)} read`,
    `in ${fmtDurationMs(run.duration_ms)}`,
  ];
  return `${run.status}  run ${run.id}: ${parts.join(', ')}${run.error ? `\n  error: ${run.error}` : ''}\n`;
}
