/**
 * Seed 001's refresh modes, each declared once: what it does to the table and the file history,
 * whether it launches a run and over which files, the steps it records, and how it is named to
 * people. The workflow, the impact estimate and the API's answers all read this table; adding a mode
 * means adding an entry here (and its own step activities if it needs new ones).
 */
export const operationTypes = ['full_refresh', 'fresh_start', 'drop_table', 'reprocess'] as const;
export type OperationType = (typeof operationTypes)[number];

/** `drop` is seed 001's literal behaviour; `swap` builds the new table aside and swaps it in (seed 004). */
export const refreshStrategies = ['drop', 'swap'] as const;
export type RefreshStrategy = (typeof refreshStrategies)[number];

/** The step names operations record, in seed 001's vocabulary. */
export type StepName =
  | 'table_dropped'
  | 'processed_files_cleared'
  | 'rows_removed'
  | 'run_triggered'
  | 'table_swapped'
  | 'deletion_scheduled';

export interface RefreshMode {
  type: OperationType;
  /** As people read it: "Full refresh started: run triggered". */
  title: string;
  /** The request that executes it (for a dry run's next_steps). */
  path: string;
  /** What happens to the table before loading: dropped, or only the selected files' rows removed. */
  table: 'drop' | 'remove_selected_rows';
  /** The file history is forgotten, so the run loads every file again. */
  clearsHistory: boolean;
  /** Whether the operation can start a run (auto_run), and which files it would load. */
  run: { files: 'all' | 'new' } | null;
  /** Strategies this mode accepts. */
  strategies: readonly RefreshStrategy[];
  /** Whether a dry run warns that the current table will be deleted. */
  deletesTable: boolean;
  /** Seed 001's notes for this mode, from the impact figures. */
  notes: (f: { filesToProcess: string; historyFiles: string }) => string[];
}

export const refreshModes: Record<OperationType, RefreshMode> = {
  full_refresh: {
    type: 'full_refresh',
    title: 'Full refresh',
    path: 'POST /api/v1/ingestions/{id}/full-refresh',
    table: 'drop',
    clearsHistory: true,
    run: { files: 'all' },
    strategies: ['drop', 'swap'],
    deletesTable: true,
    notes: () => [],
  },
  fresh_start: {
    type: 'fresh_start',
    title: 'Fresh start',
    path: 'POST /api/v1/ingestions/{id}/fresh-start',
    table: 'drop',
    clearsHistory: false,
    run: { files: 'new' },
    strategies: ['drop'],
    deletesTable: true,
    notes: (f) => [
      'Table dropped and recreated',
      `Only NEW files (added since last run) will be processed: ${f.filesToProcess}`,
      `Processed file history preserved (${f.historyFiles} files remain marked as processed)`,
    ],
  },
  drop_table: {
    type: 'drop_table',
    title: 'Drop table',
    path: 'DELETE /api/v1/ingestions/{id}/table',
    table: 'drop',
    clearsHistory: false,
    run: null,
    strategies: ['drop'],
    deletesTable: true,
    notes: (f) => [
      `Processed file history NOT affected (${f.historyFiles} files still marked as processed)`,
      'No ingestion run triggered',
      'Table will be recreated on next run',
    ],
  },
  reprocess: {
    type: 'reprocess',
    title: 'Reprocess',
    path: 'POST /api/v1/ingestions/{id}/reprocess',
    table: 'remove_selected_rows',
    clearsHistory: false,
    // The selected files were removed from the history: "new" files are exactly those.
    run: { files: 'new' },
    strategies: ['drop'],
    deletesTable: false,
    notes: (f) => [
      `Only the rows of the ${f.filesToProcess} selected files are replaced; every other row stays untouched`,
    ],
  },
};

/** Whether this request starts a run (a mode that can, with auto_run). */
export function launchesRun(mode: RefreshMode, autoRun: boolean): boolean {
  return mode.run !== null && autoRun;
}

/** The steps a request performs, in order: what a dry run lists and what a partial failure resumes. */
export function plannedSteps(mode: RefreshMode, strategy: RefreshStrategy, autoRun: boolean): StepName[] {
  if (strategy === 'swap') return ['run_triggered', 'table_swapped', 'deletion_scheduled'];
  const steps: StepName[] = [mode.table === 'drop' ? 'table_dropped' : 'rows_removed'];
  if (mode.clearsHistory) steps.push('processed_files_cleared');
  if (launchesRun(mode, autoRun)) steps.push('run_triggered');
  return steps;
}
