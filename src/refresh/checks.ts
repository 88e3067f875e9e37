/**
 * Checks before the swap (issue 11): after a swap full refresh has loaded its shadow table and
 * before it replaces the live one, these compare the two; a failing check (or `"always"`) makes the
 * operation wait in `awaiting_approval` for a person to approve or abort. Pure: the activity
 * measures, the workflow decides.
 */

export interface SwapChecks {
  /** The largest change of the row count against the live table, in percent either way. */
  max_row_change_percent?: number;
  /** The most rows the shadow run may have rejected (on_error: skip_rows). */
  max_rejected_rows?: number;
  /** Whether columns of the live table may be missing from the new version (default: true). */
  allow_dropped_columns?: boolean;
  /** Whether a column may change its type (default: true). */
  allow_type_changes?: boolean;
}

/** What the checks look at, measured on the live table and the loaded shadow. */
export interface SwapMeasures {
  live_rows: number | null;
  shadow_rows: number;
  /** Null without a live table (nothing to compare against). */
  row_change_percent: number | null;
  rejected_rows: number;
  columns_added: string[];
  columns_dropped: string[];
  /** `name: old type → new type`. */
  types_changed: string[];
}

export interface Column {
  name: string;
  type: string;
}

/** The figures for the checks, from the two tables' row counts and columns. */
export function measure(input: {
  liveRows: number | null;
  shadowRows: number;
  rejectedRows: number;
  liveColumns: Column[] | null;
  shadowColumns: Column[];
}): SwapMeasures {
  const live = new Map((input.liveColumns ?? []).map((c) => [c.name, c.type]));
  const shadow = new Map(input.shadowColumns.map((c) => [c.name, c.type]));
  const change =
    input.liveRows === null
      ? null
      : input.liveRows === 0
        ? input.shadowRows === 0
          ? 0
          : 100
        : Math.round(((input.shadowRows - input.liveRows) / input.liveRows) * 10_000) / 100;
  return {
    live_rows: input.liveRows,
    shadow_rows: input.shadowRows,
    row_change_percent: change,
    rejected_rows: input.rejectedRows,
    columns_added: input.liveColumns === null ? [] : [...shadow.keys()].filter((c) => !live.has(c)),
    columns_dropped: [...live.keys()].filter((c) => !shadow.has(c)),
    types_changed: [...live]
      .filter(([name, type]) => shadow.has(name) && shadow.get(name) !== type)
      .map(([name, type]) => `${name}: ${type} → ${shadow.get(name)}`),
  };
}

/** Each failed check, said as a person reads it; empty when every check passes. */
export function failedChecks(checks: SwapChecks, m: SwapMeasures): string[] {
  const failed: string[] = [];
  if (
    checks.max_row_change_percent !== undefined &&
    m.row_change_percent !== null &&
    Math.abs(m.row_change_percent) > checks.max_row_change_percent
  )
    failed.push(
      `rows change by ${m.row_change_percent}% (${m.live_rows} → ${m.shadow_rows}), more than ${checks.max_row_change_percent}%`,
    );
  if (checks.max_rejected_rows !== undefined && m.rejected_rows > checks.max_rejected_rows)
    failed.push(`${m.rejected_rows} rows rejected, more than ${checks.max_rejected_rows}`);
  if (checks.allow_dropped_columns === false && m.columns_dropped.length > 0)
    failed.push(`columns missing from the new version: ${m.columns_dropped.join(', ')}`);
  if (checks.allow_type_changes === false && m.types_changed.length > 0)
    failed.push(`column types changed: ${m.types_changed.join('; ')}`);
  return failed;
}
