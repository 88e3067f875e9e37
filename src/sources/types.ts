import type { Readable } from 'node:stream';

export interface FileMeta {
  /** Object key (S3) or path relative to the connection's folder (local). */
  key: string;
  size: number;
  modifiedAt: Date | null;
  etag: string | null;
}

export interface OpenedFile {
  body: Readable;
  /** The version actually read: recorded with the file's rows, so a later change is detected. */
  etag: string | null;
  size: number;
}

export interface ListOptions {
  bucket: string | undefined;
  prefix: string;
  /** Resume a listing after this key (keys come in lexicographic order). */
  startAfter?: string;
}

export interface ObjectStore {
  /** Full URI of a key, stored as `file_path` and `_source_file`. */
  uri(bucket: string | undefined, key: string): string;
  list(opts: ListOptions): AsyncIterable<FileMeta[]>;
  open(bucket: string | undefined, key: string): Promise<OpenedFile>;
}

/** A problem with the source that retrying will not fix (missing bucket, denied access, bad folder). */
export class SourceConfigError extends Error {
  override name = 'SourceConfigError';
}

/**
 * One file cannot be read for a reason of its own — denied by an ACL or a key policy, archived,
 * unreadable on disk: this version of it fails (the run goes on), and is tried again only once it
 * changes.
 */
export class SourceFileError extends Error {
  override name = 'SourceFileError';
}

/** The object vanished between listing and reading. */
export class SourceFileMissingError extends SourceFileError {
  override name = 'SourceFileMissingError';
}

/** A SourceConfigError's message for the run's `error`, with what to do about it. */
export function sourceConfigAdvice(err: SourceConfigError, connectionId: string): string {
  return `${err.message} — fix the connection or the ingestion's source, then run again (POST /api/v1/connections/${connectionId}/test checks the connection)`;
}
