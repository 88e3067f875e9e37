/**
 * A dry run's plan (issue 11): what the preview saw of the source, the file history and the table,
 * so that executing "with plan_id" runs what was previewed or is refused, saying what changed.
 * Pure: the estimate activity takes the snapshot, the refresh use case compares.
 */

/** How long a plan may be executed after its dry run: the large-operation rule's hour. */
export const planLifetimeSeconds = 3600;

export interface PlanSnapshot {
  source: {
    files: number;
    bytes: number;
    /** The newest modification time of the matching files (ISO 8601), null when none has one. */
    newest_modified_at: string | null;
    /** sha256 over each matching file's key, ETag and size, in listing (key) order. */
    keys_hash: string;
  };
  /** The ingestion's file history: files by status. */
  history: Record<string, number>;
  table: { row_count: number | null; columns: string[] };
}

/** The options a plan was made for: executing it with others runs something else. */
export interface PlanOptions {
  strategy: string;
  auto_run: boolean;
  selection?: unknown;
}

export interface Plan {
  id: string;
  expires_at: string;
  options: PlanOptions;
  snapshot: PlanSnapshot;
}

export interface PlanChange {
  what: string;
  planned: unknown;
  now: unknown;
}

const same = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

/** Everything that differs between the plan and now, each named for the person who previewed it. */
export function planChanges(
  plan: Pick<Plan, 'options' | 'snapshot'>,
  now: { options: PlanOptions; snapshot: PlanSnapshot },
): PlanChange[] {
  const changes: PlanChange[] = [];
  const check = (what: string, planned: unknown, current: unknown) => {
    if (!same(planned, current)) changes.push({ what, planned, now: current });
  };
  check('strategy', plan.options.strategy, now.options.strategy);
  check('auto_run', plan.options.auto_run, now.options.auto_run);
  check('selection', plan.options.selection, now.options.selection);

  const [p, n] = [plan.snapshot, now.snapshot];
  check('source.files', p.source.files, n.source.files);
  check('source.bytes', p.source.bytes, n.source.bytes);
  check('source.newest_modified_at', p.source.newest_modified_at, n.source.newest_modified_at);
  // The hash only adds news when the counts agree: same number of files, other keys or versions.
  if (!changes.some((c) => c.what.startsWith('source.')))
    check('source.keys_and_etags', p.source.keys_hash, n.source.keys_hash);
  const statuses = [...new Set([...Object.keys(p.history), ...Object.keys(n.history)])].sort();
  for (const s of statuses) check(`history.${s}`, p.history[s] ?? 0, n.history[s] ?? 0);
  check('table.row_count', p.table.row_count, n.table.row_count);
  check('table.columns', p.table.columns, n.table.columns);
  return changes;
}
