import type postgres from 'postgres';
import { byLineageIndex, deleteRowsOfFile } from '../destination/table.js';
import { lineageColumns, rescuedDataColumn, systemColumns } from '../domain/lineage.js';
import type { SchemaMode } from '../domain/schemas.js';
import { FileDataError, type LoadTarget, NotCompleted, reused } from './common.js';
import { describeMisfit, rejectMisfits } from './row-errors.js';
import { qualified, quoteIdent, quoteLiteral } from './sql-text.js';
import type { Staged } from './stage.js';

/** Moving staged rows into the destination: casts, schema-mode checks, lineage. */

export interface InsertInput {
  target: LoadTarget;
  sourceUri: string;
  runId: string;
  schemaMode: SchemaMode;
}

function castExpression(value: string, type: string): string {
  if (type === 'text') return value;
  return `(${value})::${type}`;
}

/** True when the text value does not fit the column type (needs PostgreSQL 16+). */
function misfit(value: string, type: string): string {
  return `(${value} IS NOT NULL AND NOT pg_input_is_valid(${value}, ${quoteLiteral(type)}))`;
}

interface ColumnSource {
  name: string;
  type: string;
  /** The value as text (for validity checks and casts). */
  text: string;
  /** The value as it should appear in _rescued_data. */
  json: string;
}

function columnSources(
  staged: { kind: 'json' } | { kind: 'csv'; names: string[] },
  columns: Map<string, string>,
): ColumnSource[] {
  const out: ColumnSource[] = [];
  for (const [name, type] of columns) {
    if (systemColumns.has(name)) continue;
    if (staged.kind === 'json') {
      out.push({ name, type, text: `doc ->> ${quoteLiteral(name)}`, json: `doc -> ${quoteLiteral(name)}` });
    } else {
      const i = staged.names.indexOf(name);
      if (i >= 0) out.push({ name, type, text: `c${i + 1}`, json: `to_jsonb(c${i + 1})` });
    }
  }
  return out;
}

const checkedTypes = (t: string) => t !== 'text' && t !== 'jsonb';

/** jsonb_build_object over "key, value" pairs, split to respect Postgres' 100-argument limit. */
function buildObject(pairs: string[]): string {
  if (pairs.length === 0) return `'{}'::jsonb`;
  const parts: string[] = [];
  for (let i = 0; i < pairs.length; i += 50)
    parts.push(`jsonb_build_object(${pairs.slice(i, i + 50).join(', ')})`);
  return parts.join(' || ');
}

async function requirePgInputIsValid(tx: postgres.TransactionSql, mode: SchemaMode): Promise<void> {
  const [v] = await tx<{ n: number }[]>`select current_setting('server_version_num')::int as n`;
  if ((v?.n ?? 0) < 160000) {
    throw new FileDataError(`schema_mode "${mode}" needs PostgreSQL 16 or later (pg_input_is_valid)`);
  }
}

/** schema_mode "fail": the first value that does not fit its column fails the file, naming the field. */
async function failOnMisfit(
  tx: postgres.TransactionSql,
  target: LoadTarget,
  stageTable: string,
  cols: ColumnSource[],
): Promise<void> {
  const checked = cols.filter((c) => checkedTypes(c.type));
  if (checked.length === 0) return;
  await requirePgInputIsValid(tx, 'fail');
  const which = checked.map((c) => `CASE WHEN ${misfit(c.text, c.type)} THEN ${quoteLiteral(c.name)} END`);
  const values = checked.map((c) => `CASE WHEN ${misfit(c.text, c.type)} THEN ${c.text} END`);
  const [bad] = await tx.unsafe<{ field: string; value: string }[]>(
    `SELECT coalesce(${which.join(', ')}) AS field, coalesce(${values.join(', ')}) AS value
     FROM ${stageTable} WHERE ${checked.map((c) => misfit(c.text, c.type)).join(' OR ')} LIMIT 1`,
  );
  if (bad) {
    const type = checked.find((c) => c.name === bad.field)?.type;
    throw new FileDataError(
      `field "${bad.field}": value "${String(bad.value).slice(0, 100)}" is not a valid ${type} for ${target.schema}.${target.table} (schema_mode "fail")`,
    );
  }
}

/** The destination columns and, for each, its value from the staged row (cast to the column type). */
function valueList(
  kind: Staged['kind'],
  cols: ColumnSource[],
  rescue: boolean,
): { names: string[]; exprs: string[] } {
  const names: string[] = [];
  const exprs: string[] = [];
  for (const c of cols) {
    names.push(quoteIdent(c.name));
    if (c.type === 'jsonb') exprs.push(kind === 'json' ? c.json : castExpression(c.text, 'jsonb'));
    else if (rescue && checkedTypes(c.type))
      exprs.push(`CASE WHEN ${misfit(c.text, c.type)} THEN NULL ELSE ${castExpression(c.text, c.type)} END`);
    else exprs.push(castExpression(c.text, c.type));
  }
  return { names, exprs };
}

/** valueList for JSON documents in a `doc` column, as add_columns loads them. */
export function jsonValueList(columns: Map<string, string>): { names: string[]; exprs: string[] } {
  return valueList('json', columnSources({ kind: 'json' }, columns), false);
}

/**
 * Under on_error: skip_rows, rows with a value that fits no column become rejected rows (in rescue
 * mode such values go to _rescued_data instead, so no row is rejected for them).
 */
export async function rejectUnfitRows(
  tx: postgres.TransactionSql,
  staged: Staged,
  columns: Map<string, string>,
  mode: SchemaMode,
  delimiter: string,
): Promise<void> {
  if (mode === 'rescue') return;
  const checked = columnSources(staged, columns).filter((c) => checkedTypes(c.type));
  if (checked.length === 0) return;
  await requirePgInputIsValid(tx, mode);
  const rowText =
    staged.kind === 'json'
      ? 'doc::text'
      : `array_to_string(ARRAY[${staged.names.map((_, i) => `c${i + 1}`).join(', ')}], ${quoteLiteral(delimiter)}, '')`;
  await rejectMisfits(
    tx,
    staged,
    checked.map((c) => ({
      condition: misfit(c.text, c.type),
      message: describeMisfit(c.name, c.text, c.type),
    })),
    rowText,
  );
}

/** The caller's state change: a lock taken before the file's rows change, a statement after. */
export interface Completion {
  lock?: postgres.PendingQuery<postgres.Row[]>;
  statement: postgres.PendingQuery<postgres.Row[]>;
}

export async function insertFromStage(
  tx: postgres.TransactionSql,
  input: InsertInput,
  staged: Staged,
  columns: Map<string, string>,
  completion: Completion | undefined,
  /** Unfit rows were set aside already (rejectUnfitRows). */
  unfitRejected = false,
): Promise<number> {
  const table = qualified(input.target.schema, input.target.table);
  const cols = columnSources(staged, columns);
  if (input.schemaMode === 'fail' && !unfitRejected) await failOnMisfit(tx, input.target, staged.table, cols);
  const rescue = input.schemaMode === 'rescue' && columns.has(rescuedDataColumn);
  if (rescue && cols.some((c) => checkedTypes(c.type))) await requirePgInputIsValid(tx, 'rescue');
  const { names, exprs } = valueList(staged.kind, cols, rescue);
  if (rescue) {
    // Values that do not fit their column, plus fields the table has no column for.
    const misfits = cols
      .filter((c) => checkedTypes(c.type))
      .map((c) => `${quoteLiteral(c.name)}, CASE WHEN ${misfit(c.text, c.type)} THEN ${c.json} END`);
    const known = [...columns.keys()];
    const extra =
      staged.kind === 'json'
        ? `(doc - ARRAY[${known.map(quoteLiteral).join(', ') || "''"}]::text[])`
        : buildObject(
            staged.names
              .map((n, i) => (columns.has(n) ? null : `${quoteLiteral(n)}, to_jsonb(c${i + 1})`))
              .filter((x): x is string => x !== null),
          );
    const rescued = misfits.length > 0 ? `jsonb_strip_nulls(${buildObject(misfits)}) || ${extra}` : extra;
    names.push(rescuedDataColumn);
    exprs.push(`NULLIF(${rescued}, '{}'::jsonb)`);
  }
  // The values of the lineage columns, in their order: the file's URI, the load's time, the run.
  names.push(...lineageColumns);
  exprs.push('$1', 'now()', '$2');
  const where = staged.kind === 'json' ? 'WHERE doc IS NOT NULL' : '';
  // The file's earlier rows (a rewritten file, a retried load) go, its rows arrive, and the caller's
  // completion statement (the file's state) follows: sent together, one round trip. The caller's
  // lock goes first: a concurrent attempt at the same file waits for this one to commit, and then
  // its DELETE (a statement of its own, with a new snapshot) sees and removes these rows.
  const [, , , , inserted, completed] = await Promise.all([
    completion?.lock,
    ...byLineageIndex(tx, deleteRowsOfFile(tx, input.target, input.sourceUri)),
    tx.unsafe(
      `INSERT INTO ${table} (${names.join(', ')}) SELECT ${exprs.join(', ')} FROM ${staged.table} ${where}`,
      [input.sourceUri, input.runId],
      reused,
    ),
    completion?.statement,
  ]);
  if (completion && completed?.count === 0) throw new NotCompleted();
  return inserted.count;
}
