/** Plain-text tables for the bench report. */

/** Columns after the first are right-aligned (numbers) unless `leftAligned`. */
export function table(header: string[], rows: (string | number)[][], leftAligned = false): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => (i === 0 || leftAligned ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n');
}

export const int = (n: number) => Math.round(n).toLocaleString('en-US');
export const secs = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
export const round = (n: number, digits = 2) => Number(n.toFixed(digits));

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}
