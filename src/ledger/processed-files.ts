import type postgres from 'postgres';
import type { FileStatus } from '../db/schema/index.js';

/**
 * The file ledger (seed 002's `processed_files`): one row per file path of an ingestion and scope,
 * carrying its latest state. Every read and write of it goes through this module, so the rules —
 * which files a run queues, how a lane claims them, what SUCCESS and FAILED record — are written
 * once. Scope 'live' is the ingestion's history; a swap refresh loads under a scope of its own.
 */
type Q = postgres.Sql | postgres.TransactionSql;
/** A SQL expression: a fragment or a column reference. */
type Expr = postgres.Fragment | postgres.Helper<string, []>;

/** A file as a listing reports it. */
export interface ListedFile {
  path: string;
  size: number;
  modifiedAt: Date | null;
  etag: string | null;
}

/**
 * The queue rule, over an existing ledger row `p` and the listed version: a file is loaded again when
 * its content changed since it loaded; when it failed for a reason of its own (bad data, a denied
 * object) only once it changed — that version would fail the same way — and when it failed for an
 * unknown reason while it has retries left; and when it is queued but not by this run. `etag` and
 * `runId` are SQL expressions for the listed version.
 */
function needsLoading(sql: Q, listed: { etag: Expr; runId?: Expr }, maxRetries: number): postgres.Fragment {
  return sql`(p.status = 'SUCCESS' and p.file_etag is distinct from ${listed.etag})
    or (p.status = 'FAILED' and ((not p.error_permanent and p.retry_count < ${maxRetries}) or p.file_etag is distinct from ${listed.etag}))
    or (p.status in ('DISCOVERED', 'PROCESSING') ${listed.runId ? sql`and p.run_id is distinct from ${listed.runId}` : sql``})`;
}

function listedRows(sql: Q, files: ListedFile[]): postgres.Fragment {
  return sql`unnest(${files.map((f) => f.path)}::text[],
                    ${files.map((f) => f.size)}::bigint[],
                    ${files.map((f) => f.modifiedAt?.toISOString() ?? null)}::timestamptz[],
                    ${files.map((f) => f.etag)}::text[]) as u(path, size, mtime, etag)`;
}

/**
 * Merges one listing page into the ledger, queueing for `runId` what the queue rule selects. The
 * page's rows are first read (one index probe per path, no lock): only new paths and rows the rule
 * selects reach the upsert, so a file that did not change costs its comparison and nothing else — an
 * upsert over it would lock its row and write WAL even with a false WHERE. The upsert applies the
 * rule again to the row it locked: a row another discovery inserted or queued after the read is seen
 * there, so two discoveries racing over one page still leave each file queued once.
 */
export async function queueListed(
  tx: Q,
  input: { ingestionId: string; scope: string; runId: string; files: ListedFile[]; maxRetries: number },
): Promise<void> {
  if (input.files.length === 0) return;
  await tx`
    with queueable as (
      select u.path, u.size, u.mtime, u.etag
      from ${listedRows(tx, input.files)}
      left join autoloader.processed_files p
        on p.ingestion_id = ${input.ingestionId} and p.scope = ${input.scope} and p.file_path = u.path
      where p.id is null or ${needsLoading(tx, { etag: tx('u.etag'), runId: tx`${input.runId}::text` }, input.maxRetries)}
    )
    insert into autoloader.processed_files as p
      (ingestion_id, scope, run_id, file_path, file_size_bytes, file_modified_at, file_etag, status)
    select ${input.ingestionId}, ${input.scope}, ${input.runId}, c.path, c.size, c.mtime, c.etag, 'DISCOVERED'
    from queueable c
    on conflict (ingestion_id, scope, file_path) do update set
      run_id = excluded.run_id,
      status = 'DISCOVERED',
      claimed_by = null,
      file_size_bytes = excluded.file_size_bytes,
      file_modified_at = excluded.file_modified_at,
      file_etag = excluded.file_etag,
      retry_count = case when p.file_etag is distinct from excluded.file_etag then 0 else p.retry_count end,
      error_permanent = p.error_permanent and p.file_etag is not distinct from excluded.file_etag,
      load_attempts = 0,
      discovered_at = now(),
      updated_at = now()
    where ${needsLoading(tx, { etag: tx('excluded.file_etag'), runId: tx('excluded.run_id') }, input.maxRetries)}`;
}

/** How many of these listed files (and their bytes) a run would load now: the same rule, no writes. */
export async function countQueueable(
  sql: Q,
  input: { ingestionId: string; files: ListedFile[]; maxRetries: number },
): Promise<{ files: number; bytes: number }> {
  if (input.files.length === 0) return { files: 0, bytes: 0 };
  const [row] = await sql<{ n: number; bytes: number }[]>`
    select count(*)::int as n, coalesce(sum(u.size), 0)::float8 as bytes
    from ${listedRows(sql, input.files)}
    left join autoloader.processed_files p
      on p.ingestion_id = ${input.ingestionId} and p.scope = 'live' and p.file_path = u.path
    where p.id is null or ${needsLoading(sql, { etag: sql('u.etag') }, input.maxRetries)}`;
  return { files: row?.n ?? 0, bytes: row?.bytes ?? 0 };
}

/** Files queued for the run (waiting or being loaded). */
export async function countQueued(sql: Q, ingestionId: string, runId: string): Promise<number> {
  const [row] = await sql<{ n: number }[]>`
    select count(*)::int as n from autoloader.processed_files
    where ingestion_id = ${ingestionId} and run_id = ${runId} and status in ('DISCOVERED', 'PROCESSING')`;
  return row?.n ?? 0;
}

export interface ClaimedFile {
  id: number;
  filePath: string;
  fileSizeBytes: number;
}

/**
 * A lane takes a batch of the run's queued files: many small ones up to the byte budget, or one
 * large one. Files this lane already held (its previous attempt died) come first, so a retried
 * activity resumes with them.
 */
export async function claimBatch(
  sql: postgres.Sql,
  input: { ingestionId: string; runId: string; lane: string; maxFiles: number; maxBytes: number },
): Promise<ClaimedFile[]> {
  for (;;) {
    const claimed = await sql.begin(async (tx) => {
      // The lane's own files first, then queued ones, each in id order: two range scans of
      // idx_processed_files_run (run, status, id) that stop at the batch, where one query over both
      // statuses would sort every file of the run on each claim.
      const candidates = (status: 'PROCESSING' | 'DISCOVERED', limit: number) => tx<ClaimedFile[]>`
        select id::float8 as id, file_path as "filePath", file_size_bytes::float8 as "fileSizeBytes"
        from autoloader.processed_files
        where run_id = ${input.runId} and status = ${status} and ingestion_id = ${input.ingestionId}
          ${status === 'PROCESSING' ? tx`and claimed_by = ${input.lane}` : tx``}
        order by id
        limit ${limit}
        for update skip locked`;
      const held = await candidates('PROCESSING', input.maxFiles);
      const queued =
        held.length < input.maxFiles ? await candidates('DISCOVERED', input.maxFiles - held.length) : [];
      const chosen: ClaimedFile[] = [];
      let bytes = 0;
      for (const c of [...held, ...queued]) {
        if (chosen.length > 0 && bytes + c.fileSizeBytes > input.maxBytes) break;
        chosen.push(c);
        bytes += c.fileSizeBytes;
      }
      if (chosen.length > 0) {
        await tx`
          update autoloader.processed_files
          set status = 'PROCESSING', claimed_by = ${input.lane}, processing_started_at = now(), updated_at = now()
          where id = any(${chosen.map((c) => c.id)}::bigint[])`;
      }
      return chosen;
    });
    if (claimed.length > 0) return claimed;
    // Nothing unlocked. That is not "the queue is empty" while another lane's claim holds queued rows
    // it will not all take (it locks up to maxFiles candidates, then keeps only its byte budget's
    // worth): answering empty would end this lane, and the run would load with fewer lanes than it
    // has (seen in the bench: 3 of 4, or 1 of 4 with four large files). Wait for those claims to
    // commit, then look again; a queue that is empty, or held only by loads, answers empty at once.
    if (!(await waitForClaims(sql, input))) return [];
  }
}

/**
 * Whether queued files of the run were locked by another claim: waits (a blocking lock, no skip)
 * until that claim commits, and answers true so the caller looks again. False: no file is queued.
 */
async function waitForClaims(
  sql: postgres.Sql,
  input: { ingestionId: string; runId: string },
): Promise<boolean> {
  return sql.begin(async (tx) => {
    // Only DISCOVERED rows: a file being loaded (PROCESSING, locked by its load for as long as the
    // load runs) is not waited for. A claim takes its rows in id order, as this does: no deadlock.
    const held = await tx`
      select 1 from autoloader.processed_files
      where ingestion_id = ${input.ingestionId} and run_id = ${input.runId} and status = 'DISCOVERED'
      order by id
      limit 1
      for update`;
    return held.length > 0;
  });
}

/** What a file's SUCCESS records. */
export interface FileSuccess {
  fileId: number;
  runId: string;
  etag: string | null;
  schemaVersion: number;
  bytesRead: number;
  durationMs: number;
  rowsRejected: number;
}

/**
 * The SUCCESS of a file, as SQL text with numbered parameters, for a statement the loader sends with
 * the file's rows (in the same transaction, or as a CTE of the one-statement load). It is
 * conditional: if another attempt at the same file committed this version first, it matches no row,
 * and the load rolls back its rows. `records` is a SQL expression counting the file's records.
 */
export function successUpdate(params: {
  fileId: string;
  runId: string;
  etag: string;
  schemaVersion: string;
  bytesRead: string;
  durationMs: string;
  records: string;
  rowsRejected: string;
  /** A FROM list the other parameters may name (several files in one statement). */
  from?: string;
}): string {
  return `update autoloader.processed_files
    set status = 'SUCCESS', claimed_by = null, run_id = ${params.runId}, file_etag = ${params.etag},
        schema_version = ${params.schemaVersion}, processed_at = clock_timestamp(),
        records_ingested = ${params.records}, bytes_read = ${params.bytesRead}, rows_rejected = ${params.rowsRejected},
        processing_duration_ms = ${params.durationMs}, error_message = null, error_type = null,
        error_permanent = false, load_attempts = 0, updated_at = now()
    ${params.from ? `from ${params.from}` : ''}
    where id = ${params.fileId} and not (status = 'SUCCESS' and file_etag is not distinct from ${params.etag})
      -- A cancelled (or otherwise closed) run loads nothing more: its late files commit nothing.
      and exists (select 1 from autoloader.runs r where r.id = ${params.runId} and r.status = 'RUNNING')`;
}

/**
 * The file's ledger row, locked for the rest of the loader's transaction: taken before the file's
 * earlier rows are deleted, so that two attempts at one file (a retried lane and one still running,
 * with the file rewritten in between) replace each other's rows instead of both committing theirs.
 */
export function lockFileRow(
  q: postgres.TransactionSql,
  fileId: number,
): postgres.PendingQuery<postgres.Row[]> {
  return q.unsafe('select 1 from autoloader.processed_files where id = $1 for update', [fileId], {
    prepare: true,
  });
}

/** The SUCCESS as a prepared statement of the loader's transaction (`records`: SQL counting the file's records). */
export function successStatement(
  q: postgres.TransactionSql,
  success: FileSuccess,
  records: string,
): postgres.PendingQuery<postgres.Row[]> {
  return q.unsafe(
    // The rows its earlier load rejected go with it (this load's own are kept after it).
    `with cleared as (delete from autoloader.rejected_rows where file_id = $1) ${successUpdate({
      fileId: '$1',
      runId: '$2',
      etag: '$3',
      schemaVersion: '$4',
      bytesRead: '$5',
      durationMs: '$6',
      rowsRejected: '$7',
      records,
    })}`,
    [
      success.fileId,
      success.runId,
      success.etag,
      success.schemaVersion,
      success.bytesRead,
      success.durationMs,
      success.rowsRejected,
    ],
    { prepare: true },
  );
}

/**
 * Error messages are kept short: a message quoting the data (a value, a line) must not become a way
 * to read a file back through the API, nor fill the ledger.
 */
export const maxErrorMessageLength = 1000;
export const capMessage = (m: string) =>
  m.length > maxErrorMessageLength ? `${m.slice(0, maxErrorMessageLength - 1)}…` : m;

/** A file's failure: recorded with its error, counted against its retries (unless it loaded meanwhile). */
export async function markFailed(
  sql: Q,
  input: {
    fileId: number;
    runId: string;
    type: string;
    message: string;
    durationMs: number;
    permanent: boolean;
  },
): Promise<void> {
  await sql`
    update autoloader.processed_files
    set status = 'FAILED', claimed_by = null, run_id = ${input.runId}, error_message = ${capMessage(input.message)},
        error_type = ${input.type}, error_permanent = ${input.permanent}, retry_count = retry_count + 1,
        load_attempts = 0, processed_at = clock_timestamp(), processing_duration_ms = ${input.durationMs},
        updated_at = now()
    where id = ${input.fileId} and status <> 'SUCCESS'`;
}

/** One more attempt at this version ended in an unknown error; returns how many so far. */
export async function countAttempt(sql: Q, fileId: number): Promise<number> {
  const [row] = await sql<{ n: number }[]>`
    update autoloader.processed_files set load_attempts = load_attempts + 1, updated_at = now()
    where id = ${fileId} returning load_attempts as n`;
  return row?.n ?? 0;
}

/**
 * At a run's start: files a crashed earlier run left claimed go back to the queue. Only one mutating
 * workflow runs per ingestion, so nothing else can be holding them.
 */
export async function releaseClaims(tx: Q, ingestionId: string, scope: string): Promise<void> {
  await tx`
    update autoloader.processed_files
    set status = 'DISCOVERED', claimed_by = null, updated_at = now()
    where ingestion_id = ${ingestionId} and scope = ${scope} and status = 'PROCESSING'`;
}

/** At a run's end: files it queued but never finished go back to the queue for the next run. */
export async function releaseRunClaims(sql: Q, ingestionId: string, runId: string): Promise<void> {
  await sql`
    update autoloader.processed_files set status = 'DISCOVERED', claimed_by = null, updated_at = now()
    where ingestion_id = ${ingestionId} and run_id = ${runId} and status = 'PROCESSING'`;
}

/** The run's figures from its files, as finishRun freezes them. */
export function runFileFigures(sql: Q, ingestionId: string, runId: string): postgres.Fragment {
  return sql`
    select count(*) filter (where status = 'SUCCESS')::int as processed,
           count(*) filter (where status = 'FAILED')::int as failed,
           count(*) filter (where status in ('SUCCESS', 'FAILED', 'DISCOVERED', 'PROCESSING'))::int as queued,
           coalesce(sum(records_ingested) filter (where status = 'SUCCESS'), 0)::bigint as records,
           coalesce(sum(rows_rejected) filter (where status = 'SUCCESS'), 0)::bigint as rejected,
           coalesce(sum(bytes_read), 0)::bigint as bytes
    from autoloader.processed_files where ingestion_id = ${ingestionId} and run_id = ${runId}`;
}

/** Live progress of a running run. */
export async function runProgress(
  sql: Q,
  ingestionId: string,
  runId: string,
): Promise<{ total: number; done: number; failed: number; records: number }> {
  const [p] = await sql<{ total: number; done: number; failed: number; records: number }[]>`
    select count(*)::int as total,
           count(*) filter (where status in ('SUCCESS', 'FAILED'))::int as done,
           count(*) filter (where status = 'FAILED')::int as failed,
           coalesce(sum(records_ingested) filter (where status = 'SUCCESS'), 0)::float8 as records
    from autoloader.processed_files where ingestion_id = ${ingestionId} and run_id = ${runId}`;
  return p ?? { total: 0, done: 0, failed: 0, records: 0 };
}

/** The history's size and date range (for impact estimates and dry runs). */
export async function historySummary(
  sql: Q,
  ingestionId: string,
): Promise<{ files: number; oldest: string | null; newest: string | null }> {
  const [h] = await sql<{ n: number; oldest: string | null; newest: string | null }[]>`
    select count(*)::int as n,
           min(coalesce(file_modified_at, discovered_at))::date::text as oldest,
           max(coalesce(file_modified_at, discovered_at))::date::text as newest
    from autoloader.processed_files where ingestion_id = ${ingestionId} and scope = 'live'`;
  return { files: h?.n ?? 0, oldest: h?.oldest ?? null, newest: h?.newest ?? null };
}

/** Forgets the live history, so the next run takes every file again; returns what it forgot. */
export async function clearHistory(
  tx: Q,
  ingestionId: string,
): Promise<{ filesCleared: number; oldestFile: string | null; newestFile: string | null }> {
  const [edges] = await tx<{ oldest: string | null; newest: string | null }[]>`
    select (array_agg(file_path order by file_modified_at asc nulls last, file_path))[1] as oldest,
           (array_agg(file_path order by file_modified_at desc nulls last, file_path desc))[1] as newest
    from autoloader.processed_files where ingestion_id = ${ingestionId} and scope = 'live'`;
  const deleted =
    await tx`delete from autoloader.processed_files where ingestion_id = ${ingestionId} and scope = 'live'`;
  return {
    filesCleared: deleted.count,
    oldestFile: edges?.oldest ?? null,
    newestFile: edges?.newest ?? null,
  };
}

/** One page of the live history by id (for selections over millions of files). */
export async function historyPage(
  sql: Q,
  ingestionId: string,
  afterId: number,
  limit: number,
): Promise<{ id: number; path: string; size: number; modified: Date | null }[]> {
  return sql<{ id: number; path: string; size: number; modified: Date | null }[]>`
    select id::float8 as id, file_path as path, file_size_bytes::float8 as size, file_modified_at as modified
    from autoloader.processed_files
    where ingestion_id = ${ingestionId} and scope = 'live' and id > ${afterId}
    order by id limit ${limit}`;
}

/** Forgets these files, so the next run loads them again. */
export async function forgetFiles(tx: Q, ids: number[]): Promise<void> {
  await tx`delete from autoloader.processed_files where id = any(${ids}::bigint[])`;
}

/** The swap: a refresh's own history becomes the live one. */
export async function promoteScope(tx: Q, ingestionId: string, scope: string): Promise<void> {
  await tx`delete from autoloader.processed_files where ingestion_id = ${ingestionId} and scope = 'live'`;
  await tx`update autoloader.processed_files set scope = 'live' where ingestion_id = ${ingestionId} and scope = ${scope}`;
}

/** A failed refresh's own history is dropped; the live one is untouched. */
export async function discardScope(tx: Q, ingestionId: string, scope: string): Promise<void> {
  await tx`delete from autoloader.processed_files where ingestion_id = ${ingestionId} and scope = ${scope}`;
}

export interface LedgerRow {
  id: number;
  file_path: string;
  file_size_bytes: number;
  file_modified_at: Date | null;
  file_etag: string | null;
  status: FileStatus;
  run_id: string | null;
  discovered_at: Date;
  processing_started_at: Date | null;
  processed_at: Date | null;
  records_ingested: number | null;
  bytes_read: number | null;
  processing_duration_ms: number | null;
  error_message: string | null;
  error_type: string | null;
  retry_count: number;
  schema_version: number | null;
  rows_rejected: number | null;
}

/** The live history as the API lists it, paged by id. */
export async function listFiles(
  sql: Q,
  ingestionId: string,
  page: { afterId: number; limit: number; status?: FileStatus },
): Promise<LedgerRow[]> {
  return sql<LedgerRow[]>`
    -- int8 columns as float8: postgres.js returns int8 as strings; these stay far below 2^53.
    select id::float8 as id, file_path, file_size_bytes::float8 as file_size_bytes, file_modified_at, file_etag,
           status, run_id, discovered_at, processing_started_at, processed_at,
           records_ingested::float8 as records_ingested, bytes_read::float8 as bytes_read,
           processing_duration_ms::float8 as processing_duration_ms, error_message, error_type, retry_count,
           schema_version, rows_rejected::float8 as rows_rejected
    from autoloader.processed_files
    where ingestion_id = ${ingestionId} and scope = 'live' and id > ${page.afterId}
      ${page.status ? sql`and status = ${page.status}` : sql``}
    order by id limit ${page.limit}`;
}

export interface RejectedRow {
  id: number;
  file_id: number;
  file_path: string;
  run_id: string;
  line: number;
  error: string;
  raw: string;
  created_at: Date;
}

/** Rows the live files' loads set aside (on_error: skip_rows), paged by id. */
export async function listRejectedRows(
  sql: Q,
  ingestionId: string,
  page: { afterId: number; limit: number; fileId?: number },
): Promise<RejectedRow[]> {
  return sql<RejectedRow[]>`
    select r.id::float8 as id, r.file_id::float8 as file_id, r.file_path, r.run_id, r.line::float8 as line,
           r.error, r.raw, r.created_at
    from autoloader.rejected_rows r join autoloader.processed_files f on f.id = r.file_id
    where r.ingestion_id = ${ingestionId} and f.scope = 'live' and r.id > ${page.afterId}
      ${page.fileId !== undefined ? sql`and r.file_id = ${page.fileId}` : sql``}
    order by r.id limit ${page.limit}`;
}

/** Files per schema version of the live history (the schema history's `files`). */
export async function filesPerSchemaVersion(sql: Q, ingestionId: string): Promise<Map<number, number>> {
  const rows = await sql<{ version: number; n: number }[]>`
    select schema_version as version, count(*)::int as n from autoloader.processed_files
    where ingestion_id = ${ingestionId} and scope = 'live' and schema_version is not null
    group by schema_version`;
  return new Map(rows.map((r) => [r.version, r.n]));
}

/** Files of the live history by status (for metrics). */
export async function filesByStatus(sql: Q): Promise<{ status: string; n: number }[]> {
  return sql<{ status: string; n: number }[]>`
    select status, count(*)::int as n from autoloader.processed_files where scope = 'live' group by 1 order by 1`;
}
