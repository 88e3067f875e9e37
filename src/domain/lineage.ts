/**
 * The columns the loader adds to every destination row. Lineage is how a file's rows are found again:
 * replaced when its ETag changes, removed by reprocess, counted per file.
 */
export const lineageColumns = ['_source_file', '_ingested_at', '_run_id'] as const;

/**
 * The lineage columns a COPY sends per row: `_ingested_at` is left to its default, now(), which is
 * the loading transaction's start as the other paths write it (a column Postgres computes costs it
 * less than a timestamp it must parse on every row).
 */
export const copiedLineageColumns = ['_source_file', '_run_id'] as const;

/** rescue mode's column: fields and values that fit no column, as JSON. */
export const rescuedDataColumn = '_rescued_data';

/** Every column the service owns in a destination table; source fields never map onto these. */
export const systemColumns: ReadonlySet<string> = new Set<string>([...lineageColumns, rescuedDataColumn]);

/** The lineage columns as created with a new table. */
export const lineageColumnsDdl = [
  '_source_file text NOT NULL',
  '_ingested_at timestamptz NOT NULL DEFAULT now()',
  '_run_id text NOT NULL',
] as const;
