import type { FC } from 'hono/jsx';
import type { Run } from './api.js';
import { fmtDuration, fmtInt, fmtTime } from './format.js';

const W = 960;
const H = 220;
const PAD = { top: 14, right: 70, bottom: 30, left: 70 };
const plotW = W - PAD.left - PAD.right;
const plotH = H - PAD.top - PAD.bottom;

const barColour: Record<string, string> = {
  SUCCESS: '#8fb0ec',
  PARTIAL_SUCCESS: '#e9c46a',
  FAILED: '#e76f51',
  CANCELLED: '#c3c8d0',
  RUNNING: '#c3c8d0',
  PAUSED: '#c3c8d0',
};

/**
 * Rows written (bars, left axis) and duration (line, right axis) per run, oldest on the left.
 * Runs are spaced evenly in start order rather than on a time scale: they come in bursts (a manual
 * retry seconds after a nightly run) that a time axis would pile onto one pixel. The first and last
 * start times label the axis, and each bar's tooltip names its run.
 */
export const RunsChart: FC<{ runs: Run[] }> = ({ runs }) => {
  const ordered = [...runs].sort((a, b) => a.started_at.localeCompare(b.started_at));
  const maxRows = Math.max(1, ...ordered.map((r) => r.records_written));
  const maxMs = Math.max(1, ...ordered.map((r) => r.duration_ms ?? 0));
  const slot = plotW / Math.max(1, ordered.length);
  const barW = Math.max(2, Math.min(28, slot * 0.6));
  const x = (i: number) => PAD.left + slot * i + slot / 2;
  const yRows = (n: number) => PAD.top + plotH - (n / maxRows) * plotH;
  const yMs = (ms: number) => PAD.top + plotH - (ms / maxMs) * plotH;
  const timed = ordered.map((r, i) => ({ r, i })).filter(({ r }) => r.duration_ms !== null);
  const line = timed.map(({ r, i }) => `${x(i).toFixed(1)},${yMs(r.duration_ms!).toFixed(1)}`).join(' ');

  return (
    <figure class="chart-figure">
      <svg
        class="chart"
        viewBox={`0 0 ${W} ${H}`}
        role="img"
        aria-labelledby="runs-chart-title"
        data-runs={String(ordered.length)}
      >
        <title id="runs-chart-title">{`Rows written and duration of the last ${ordered.length} runs`}</title>
        <line class="axis" x1={PAD.left} y1={PAD.top + plotH} x2={W - PAD.right} y2={PAD.top + plotH} />
        <line class="axis" x1={PAD.left} y1={PAD.top} x2={PAD.left} y2={PAD.top + plotH} />
        <line class="axis" x1={W - PAD.right} y1={PAD.top} x2={W - PAD.right} y2={PAD.top + plotH} />
        <text x={PAD.left - 6} y={PAD.top + 4} text-anchor="end">
          {fmtInt(maxRows)}
        </text>
        <text x={PAD.left - 6} y={PAD.top + plotH} text-anchor="end">
          0
        </text>
        <text x={W - PAD.right + 6} y={PAD.top + 4}>
          {fmtDuration(maxMs)}
        </text>
        <text x={W - PAD.right + 6} y={PAD.top + plotH}>
          0 s
        </text>
        {ordered.map((r, i) => (
          <rect
            class="bar"
            data-run-id={r.id}
            x={(x(i) - barW / 2).toFixed(1)}
            y={yRows(r.records_written).toFixed(1)}
            width={barW.toFixed(1)}
            height={Math.max(1, (r.records_written / maxRows) * plotH).toFixed(1)}
            fill={barColour[r.status] ?? '#c3c8d0'}
          >
            <title>{`${r.id} · ${fmtTime(r.started_at)} · ${r.status} · ${fmtInt(r.records_written)} rows · ${fmtDuration(r.duration_ms)}`}</title>
          </rect>
        ))}
        {timed.length > 1 ? <polyline points={line} fill="none" stroke="#e07a1f" stroke-width="2" /> : null}
        {timed.map(({ r, i }) => (
          <circle cx={x(i).toFixed(1)} cy={yMs(r.duration_ms!).toFixed(1)} r="3.5" fill="#e07a1f">
            <title>{`${r.id} took ${fmtDuration(r.duration_ms)}`}</title>
          </circle>
        ))}
        {ordered.length > 0 ? (
          <>
            <text x={PAD.left} y={H - 8}>
              {fmtTime(ordered[0]!.started_at)}
            </text>
            {ordered.length > 1 ? (
              <text x={W - PAD.right} y={H - 8} text-anchor="end">
                {fmtTime(ordered.at(-1)!.started_at)}
              </text>
            ) : null}
          </>
        ) : null}
      </svg>
      <figcaption class="legend">
        <span>
          <span class="swatch swatch-rows" />
          rows written (left axis; colour = status)
        </span>
        <span>
          <span class="swatch swatch-duration" />
          duration (right axis)
        </span>
      </figcaption>
    </figure>
  );
};
