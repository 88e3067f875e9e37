import { isUtf8 } from 'node:buffer';
import postgres from 'postgres';
import { byLineageIndex } from '../destination/table.js';
import { lineageColumns, systemColumns } from '../domain/lineage.js';
import { successUpdate } from '../ledger/processed-files.js';
import type { LoadTarget } from './common.js';
import { jsonTextWithoutNulEscapes, nonBlankJsonLines } from './copy-input.js';
import { jsonValueList } from './insert.js';
import { knownSchemaVersion } from './schema-history.js';
import { qualified } from './sql-text.js';
import { jsonLinesOf, withoutBom } from './stage.js';

/**
 * The fast path for a small JSON-lines file whose fields the table already has (the usual case once
 * an ingestion is under way): the whole load is one statement, in a transaction of its own
 * (byLineageIndex sets the planner around it). The statement itself checks that every record is an object whose fields have
 * columns. The file's state change claims the file; its old rows go and its new rows arrive only
 * if that claim succeeded, so a concurrent attempt at the same file that committed first makes this
 * one change nothing. Anything unusual (a new field, a line that is not an object, a value Postgres
 * rejects, a column list that has changed) answers `fallback`, and the caller loads the file the
 * general way, which also gives the precise error.
 */
export type SmallFileOutcome =
  | { kind: 'loaded'; records: number }
  /** Another attempt committed this version of the file first: nothing changed. */
  | { kind: 'already-loaded' }
  | { kind: 'fallback'; reason: string };

export interface SmallFileInput {
  ingestionId: string;
  fileId: number;
  target: LoadTarget;
  sourceUri: string;
  runId: string;
  etag: string | null;
  content: Buffer;
  /** The destination's columns as last read (undefined: no table yet). */
  columns: Map<string, string> | undefined;
  startedAt: number;
  /** Aborted: the statement is cancelled on the server (it may be waiting on a lock). */
  signal?: AbortSignal;
}

/** What the statement answers for a file. */
export interface SmallFileRow {
  unfit: boolean;
  claimed: number;
  records: number;
}

/** Why the file cannot take the one-statement path, as far as it is known before sending it. */
export function smallFileUnfit(input: SmallFileInput): string | undefined {
  if (!input.columns) return 'no table yet';
  if (!isUtf8(input.content)) return 'not UTF-8';
  if (knownSchemaVersion(input.ingestionId, input.columns) === undefined) return 'new schema version';
  return undefined;
}

/** The file's one statement in `tx`, for a file smallFileUnfit has nothing against. */
function smallFileStatement(
  tx: postgres.TransactionSql,
  input: SmallFileInput,
): postgres.PendingQuery<SmallFileRow[]> {
  const columns = input.columns!;
  const schemaVersion = knownSchemaVersion(input.ingestionId, columns)!;
  const text = jsonTextWithoutNulEscapes(withoutBom(input.content).toString('utf8'));
  // Our count of the file's records: the statement loads the file only if Postgres sees as many.
  const counted = nonBlankJsonLines(input.content);
  const fields = [...columns.keys()].filter((c) => !systemColumns.has(c));

  const table = qualified(input.target.schema, input.target.table);
  const { names, exprs } = jsonValueList(columns);
  return tx.unsafe<SmallFileRow[]>(
    `WITH lines AS MATERIALIZED (
       SELECT doc FROM ${jsonLinesOf('$1')}
     ), unfit AS (
       -- A record that is not an object, or has a field the table has no column for; or a count
       -- of records other than ours.
       SELECT EXISTS (
         SELECT 1 FROM lines
         WHERE doc IS NOT NULL AND (jsonb_typeof(doc) <> 'object' OR doc - $9::text[] <> '{}'::jsonb)
       ) OR (SELECT count(*) FROM lines WHERE doc IS NOT NULL) <> $10 AS found
     ), claim AS (
       ${successUpdate({
         fileId: '$2',
         runId: '$5',
         etag: '$4',
         schemaVersion: '$8',
         bytesRead: '$6',
         durationMs: '$7',
         records: '(SELECT count(*) FROM lines WHERE doc IS NOT NULL)',
         rowsRejected: '0',
       })}
         AND NOT (SELECT found FROM unfit)
         -- This one statement's snapshot cannot see rows another attempt at the file committed
         -- while it waited for the row: it loads only over a file that is still being loaded.
         AND status = 'PROCESSING'
       RETURNING id
     ), cleared AS (
       -- Rows an earlier load of the file rejected (under on_error: skip_rows) go with its rows.
       DELETE FROM autoloader.rejected_rows WHERE file_id = $2 AND EXISTS (SELECT 1 FROM claim)
     ), earlier AS (
       DELETE FROM ${table} WHERE _source_file = $3 AND EXISTS (SELECT 1 FROM claim)
     ), inserted AS (
       INSERT INTO ${table} (${[...names, ...lineageColumns].join(', ')})
       SELECT ${[...exprs, '$3', 'now()', '$5'].join(', ')} FROM lines
       WHERE doc IS NOT NULL AND EXISTS (SELECT 1 FROM claim)
       RETURNING 1
     )
      SELECT (SELECT found FROM unfit) AS unfit, (SELECT count(*) FROM claim)::int AS claimed,
            (SELECT count(*) FROM inserted)::int AS records,
            -- Rows the table did not take (a trigger, a rule): the statement fails, nothing commits.
            (NOT EXISTS (SELECT 1 FROM claim) OR autoloader.reconcile($10, (SELECT count(*) FROM inserted))) AS reconciled`,
    [
      text,
      input.fileId,
      input.sourceUri,
      input.etag,
      input.runId,
      input.content.length,
      Date.now() - input.startedAt,
      schemaVersion,
      fields,
      counted,
    ],
    { prepare: true },
  );
}

/** The statement's answer as an outcome. */
export function smallFileOutcome(row: SmallFileRow | undefined): SmallFileOutcome {
  if (row?.unfit)
    return { kind: 'fallback', reason: 'a record the known columns do not cover, or a count to reconcile' };
  if (!row || row.claimed === 0) return { kind: 'already-loaded' };
  return { kind: 'loaded', records: row.records };
}

export async function loadSmallJsonLines(
  sql: postgres.Sql,
  input: SmallFileInput,
): Promise<SmallFileOutcome> {
  const reason = smallFileUnfit(input);
  if (reason !== undefined) return { kind: 'fallback', reason };
  try {
    // In a transaction of its own, for byLineageIndex: the file's earlier rows are found by the
    // index whatever the table's statistics say.
    const row = await sql.begin(async (tx) => {
      const query = smallFileStatement(tx, input);
      const cancel = () => query.cancel();
      input.signal?.addEventListener('abort', cancel, { once: true });
      try {
        const [, rows] = await Promise.all(byLineageIndex(tx, query));
        return rows[0];
      } finally {
        input.signal?.removeEventListener('abort', cancel);
      }
    });
    return smallFileOutcome(row);
  } catch (err) {
    // Postgres refused the statement (a value that does not fit, a table changed meanwhile): the
    // general path loads the file, or fails it with the precise reason. Lost connections propagate.
    // A cancelled statement is not the file's problem: the caller stops.
    if (err instanceof postgres.PostgresError && err.code !== '57014')
      return { kind: 'fallback', reason: err.message };
    throw err;
  }
}
