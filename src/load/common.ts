import type postgres from 'postgres';

/** What the loader's modules share: the target, the errors, statement options. */

export interface LoadTarget {
  schema: string;
  table: string;
}

export interface AddedColumn {
  name: string;
  type: string;
  /** Typed from the file's first rows only. */
  sampled?: boolean;
  /** The field's name in the file, when the column could not be named like it (column-names.ts). */
  sourceName?: string;
}

/** The caller's completion statement changed no row (the file was loaded meanwhile): roll back. */
export class NotCompleted extends Error {
  override name = 'NotCompleted';
}

/** The file's content is wrong (malformed JSON, ragged CSV, a value that does not fit): retrying won't help. */
export class FileDataError extends Error {
  override name = 'FileDataError';
}

/** Postgres rejected a line of the file, which we located ourselves (COPY's errors name theirs). */
export class LineDataError extends Error {
  override name = 'LineDataError';
  constructor(
    readonly pg: postgres.PostgresError,
    readonly line: number,
  ) {
    super(pg.message);
  }
}

/**
 * The rows a load put in the table differ from the records we counted in the file: something between
 * the file and the table (a parser's end marker, a quoting surprise) dropped or joined rows. The
 * file fails rather than loading short; retrying the same bytes would do the same.
 */
export class ReconciliationError extends FileDataError {
  override name = 'ReconciliationError';
  constructor(
    readonly counted: number,
    readonly loaded: number,
    readonly rejected = 0,
  ) {
    super(
      `the file has ${counted} records but ${loaded} were loaded${rejected > 0 ? ` and ${rejected} rejected` : ''}; the file was not loaded`,
    );
  }
}

/**
 * For statements that run once per file with the same text (per table and column set): prepared
 * once per connection. Unprepared, postgres.js describes a parameterised statement before binding
 * it, a second round trip on every call.
 */
export const reused = { prepare: true } as const;
