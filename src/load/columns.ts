import type postgres from 'postgres';
import { addColumns, createTable, lockDdl, readColumns, widenColumnTypes } from '../destination/table.js';
import { rescuedDataColumn } from '../domain/lineage.js';
import type { DeclaredColumn, SchemaMode } from '../domain/schemas.js';
import { mapFieldNames } from './column-names.js';
import { type AddedColumn, FileDataError, type LoadTarget } from './common.js';
import {
  type ColumnType,
  emptyCounts,
  inferColumnType,
  patterns,
  sqlType,
  type ValueCounts,
} from './inference.js';
import { quoteLiteral } from './sql-text.js';
import { jsonStage, type Staged } from './stage.js';

/** The destination's columns: reading them, inferring new ones, creating and widening them. */

/** The destination's columns (name → SQL type), or undefined when the table does not exist yet. */
export const destinationColumns = readColumns;

/**
 * destinationColumns and, in the same statement (so from the same catalog snapshot), whether any
 * staged JSON document has a key outside those columns and the declared ones. `unknownKeys` is
 * undefined when the table does not exist.
 */
export async function destinationColumnsWithProbe(
  tx: postgres.TransactionSql,
  target: LoadTarget,
  declared: DeclaredColumn[],
): Promise<{ columns: Map<string, string> | undefined; unknownKeys: boolean | undefined }> {
  const rows = await tx<{ name: string; type: string; unknown: boolean }[]>`
    with t as (
      select c.oid from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = ${target.schema} and c.relname = ${target.table} and c.relkind in ('r', 'p')
    ), cols as (
      select a.attname::text as name, format_type(a.atttypid, a.atttypmod) as type, a.attnum
      from pg_attribute a join t on a.attrelid = t.oid where a.attnum > 0 and not a.attisdropped
    ), probe as (
      select exists (
        select 1 from ${tx(jsonStage)}
        where doc is not null and doc - (array(select name from cols) || ${declared.map((c) => c.name)}::text[]) <> '{}'::jsonb
      ) as unknown
    )
    select cols.name, cols.type, probe.unknown from cols cross join probe order by cols.attnum`;
  if (rows.length === 0) return { columns: undefined, unknownKeys: undefined };
  return { columns: new Map(rows.map((r) => [r.name, r.type])), unknownKeys: rows[0]!.unknown };
}

/**
 * The staged fields. For JSON, a cheap probe first asks whether any document has a key outside the
 * known columns (the usual answer once a table exists is no); only then are the keys enumerated.
 */
async function stagedKeys(
  tx: postgres.TransactionSql,
  staged: Staged,
  existing: Map<string, string> | undefined,
  declared: DeclaredColumn[],
): Promise<string[]> {
  if (staged.kind === 'csv') return staged.names;
  if (staged.unknownKeys === false) return [];
  const known = [...(existing?.keys() ?? []), ...declared.map((c) => c.name)];
  if (known.length > 0) {
    const [probe] = await tx<{ unknown: boolean }[]>`
      select exists (
        select 1 from ${tx(jsonStage)} where doc is not null and doc - ${known}::text[] <> '{}'::jsonb
      ) as unknown`;
    if (!probe?.unknown) return [];
  }
  const rows = await tx<
    { k: string }[]
  >`select distinct k from ${tx(jsonStage)}, jsonb_object_keys(doc) k where doc is not null`;
  return rows.map((r) => r.k);
}

/** Rows of a new field's first file its type is inferred from; the rest are checked by the load itself. */
const inferenceSampleRows = 10_000;

interface Inferred {
  types: Map<string, ColumnType>;
  /** Fields typed from the first rows only: widened over the whole file if a later value does not fit. */
  sampled: Set<string>;
}

/**
 * Column types for new fields. With `sample`, the counts cover the file's first rows (COPY keeps
 * file order); a field with no value among them is counted over the whole file. Without, every row.
 */
async function inferTypes(
  tx: postgres.TransactionSql,
  staged: Staged,
  keys: string[],
  sample: boolean,
): Promise<Inferred> {
  const limit = sample ? inferenceSampleRows : null;
  const counted = await countValues(tx, staged, keys, limit);
  const sampled = new Set<string>();
  if (limit !== null && counted.rows >= limit) {
    const unseen = keys.filter((k) => (counted.counts.get(k)?.nonNull ?? 0) === 0);
    if (unseen.length > 0) {
      const whole = await countValues(tx, staged, unseen, null);
      for (const k of unseen) counted.counts.set(k, whole.counts.get(k) ?? emptyCounts);
    }
    for (const k of keys) if (!unseen.includes(k)) sampled.add(k);
  }
  const types = new Map(keys.map((k) => [k, inferColumnType(counted.counts.get(k) ?? emptyCounts)]));
  return { types, sampled };
}

/** Per field: how many values are null, booleans, integers… over the first `limit` rows or all. */
async function countValues(
  tx: postgres.TransactionSql,
  staged: Staged,
  keys: string[],
  limit: number | null,
): Promise<{ counts: Map<string, ValueCounts>; rows: number }> {
  const counts = new Map<string, ValueCounts>();
  const limitClause = limit === null ? '' : `LIMIT ${limit}`;
  if (staged.kind === 'json') {
    const [total] = await tx.unsafe<{ n: number }[]>(
      `SELECT count(*)::int AS n FROM (SELECT 1 FROM ${jsonStage} WHERE doc IS NOT NULL ${limitClause}) s`,
    );
    const rows = await tx.unsafe<(ValueCounts & { k: string })[]>(
      `select k,
        count(*) filter (where t <> 'null')::int as "nonNull",
        count(*) filter (where t = 'boolean')::int as booleans,
        count(*) filter (where t = 'number' and v ~ $2)::int as integers,
        count(*) filter (where t = 'number')::int as numbers,
        count(*) filter (where t = 'string' and v ~ $3)::int as timestamps,
        count(*) filter (where t = 'string' and v ~ $4)::int as dates,
        count(*) filter (where t in ('object', 'array'))::int as nested
      from (select doc from ${jsonStage} where doc is not null ${limitClause}) s, jsonb_each(s.doc) as e(k, val),
        lateral (select jsonb_typeof(val) as t, val #>> '{}' as v) x
      where k = any($1)
      group by k`,
      [keys, patterns.integer, patterns.timestamp, patterns.date],
    );
    for (const r of rows) counts.set(r.k, r);
    return { counts, rows: total?.n ?? 0 };
  }
  const selects = keys.map((name) => {
    const c = `c${staged.names.indexOf(name) + 1}`;
    return [
      `count(${c})::int`,
      `count(*) filter (where ${c} ~* ${quoteLiteral(patterns.boolean)})::int`,
      `count(*) filter (where ${c} ~ ${quoteLiteral(patterns.integer)})::int`,
      `count(*) filter (where ${c} ~ ${quoteLiteral(patterns.number)})::int`,
      `count(*) filter (where ${c} ~ ${quoteLiteral(patterns.timestamp)})::int`,
      `count(*) filter (where ${c} ~ ${quoteLiteral(patterns.date)})::int`,
    ].join(', ');
  });
  const [row] = await tx
    .unsafe(
      `select count(*)::int, ${selects.join(', ')} from (select * from ${staged.table} ${limitClause}) s`,
    )
    .values();
  const values = (row ?? []).map(Number);
  keys.forEach((name, i) => {
    const v = values.slice(1 + i * 6, 1 + i * 6 + 6);
    counts.set(name, {
      nonNull: v[0]!,
      booleans: v[1]!,
      integers: v[2]!,
      numbers: v[3]!,
      timestamps: v[4]!,
      dates: v[5]!,
      nested: 0,
    });
  });
  return { counts, rows: values[0] ?? 0 };
}

/**
 * Creates the table on first load and adds columns for new fields. Declared columns (the ingestion's
 * explicit schema) are created with their declared types; other fields are inferred, or, when the
 * table's shape is fixed (declared columns, or an existing table in rescue mode), left to the schema
 * mode. DDL is serialised per table by an advisory lock, and only taken when something is missing:
 * parallel files into an existing table never wait on each other here.
 */
export async function ensureColumns(
  tx: postgres.TransactionSql,
  target: LoadTarget,
  existing: Map<string, string> | undefined,
  staged: Staged,
  mode: SchemaMode,
  declared: DeclaredColumn[],
  ddl: postgres.Sql | undefined,
): Promise<AddedColumn[]> {
  // In rescue mode the table's shape is fixed by its declared columns, or once it exists: other
  // fields go to _rescued_data, so they need not even be listed.
  const shapeFixed = (table: Map<string, string> | undefined) =>
    mode === 'rescue' && (declared.length > 0 || table !== undefined);
  const fields = shapeFixed(existing) ? [] : await stagedKeys(tx, staged, existing, declared);
  // Fields whose names cannot be columns are renamed in the stage to the columns they get.
  const renamed = staged.kind === 'json' ? mapFieldNames(fields) : new Map<string, string>();
  if (renamed.size > 0 && staged.kind === 'json') await renameStagedFields(tx, staged, renamed);
  const keys = fields.map((k) => renamed.get(k) ?? k);
  const sourceOf = new Map([...renamed].map(([field, column]) => [column, field]));
  if (staged.kind === 'csv') for (const [column, field] of staged.sources) sourceOf.set(column, field);
  const declaredNames = new Set(declared.map((c) => c.name));
  const undeclared = (table: Map<string, string> | undefined) =>
    keys.filter((k) => !table?.has(k) && !declaredNames.has(k));
  if (mode === 'fail' && (existing || declared.length > 0)) {
    const extra = undeclared(existing);
    if (extra.length > 0) {
      const where = existing ? `${target.schema}.${target.table}` : 'the declared columns';
      throw new FileDataError(
        `field${extra.length > 1 ? 's' : ''} ${extra.map((k) => `"${k}"`).join(', ')} not in ${where} (schema_mode "fail")`,
      );
    }
  }
  const missing = (table: Map<string, string> | undefined) => ({
    declared: declared.filter((c) => !table?.has(c.name)),
    inferred: shapeFixed(table) ? [] : undeclared(table),
    rescue: mode === 'rescue' && !table?.has(rescuedDataColumn),
  });
  const before = missing(existing);
  if (existing && before.declared.length === 0 && before.inferred.length === 0 && !before.rescue)
    return noChange;

  /** What to add to `table` (undefined: no table yet), types inferred over this file's staged rows. */
  const plan = async (table: Map<string, string> | undefined) => {
    const now = missing(table);
    if (table && now.declared.length === 0 && now.inferred.length === 0 && !now.rescue) return [];
    const inferred: Inferred =
      now.inferred.length > 0
        ? await inferTypes(tx, staged, now.inferred, true)
        : { types: new Map(), sampled: new Set() };
    const order = staged.kind === 'json' ? staged.keyOrder.map((k) => renamed.get(k) ?? k) : staged.names;
    const rank = (k: string) => {
      const i = order.indexOf(k);
      return i < 0 ? Number.MAX_SAFE_INTEGER : i;
    };
    const added = [
      ...now.declared.map((c) => ({ name: c.name, type: c.type })),
      ...now.inferred
        .sort((a, b) => rank(a) - rank(b) || a.localeCompare(b))
        .map((name) => {
          const type = sqlType[inferred.types.get(name) ?? 'text'];
          // Only a type a later value can fail to fit is worth widening.
          const sampled = inferred.sampled.has(name) && type !== 'text' && type !== 'jsonb';
          const sourceName = sourceOf.get(name);
          return {
            name,
            type,
            ...(sampled ? { sampled } : {}),
            ...(sourceName === undefined ? {} : { sourceName }),
          };
        }),
    ];
    if (now.rescue) added.push({ name: rescuedDataColumn, type: 'jsonb' });
    return added;
  };
  if (!existing && ddl) {
    // A new table is created in its own short transaction, so that the other files loading into it
    // wait for its creation only, not for this file's whole load. Its columns come from this file
    // (types from its first rows; loadFile widens them if a later row does not fit).
    const created = await ddl.begin(async (dtx) => {
      await lockDdl(dtx, target);
      if (await destinationColumns(dtx, target)) return undefined;
      const added = await plan(undefined);
      await createTable(dtx, target, added);
      return added;
    });
    if (created) return created;
    // Another file created it meanwhile: add what this file needs below, atomically with its load.
  }

  await lockDdl(tx, target);
  const current = await destinationColumns(tx, target);
  // Another file created the columns while this one waited for the lock: nothing to infer.
  const added = await plan(current);
  if (!current) await createTable(tx, target, added);
  else await addColumns(tx, target, added);
  return added;
}

/**
 * Renames fields in every staged document (field name → column name), in place: everything after
 * reads the fields under the names of their columns.
 */
async function renameStagedFields(
  tx: postgres.TransactionSql,
  staged: Staged,
  renamed: Map<string, string>,
): Promise<void> {
  await tx.unsafe(
    `UPDATE ${staged.table} SET doc = (
       SELECT jsonb_object_agg(coalesce(m.col, e.key), e.value)
       FROM jsonb_each(doc) e LEFT JOIN unnest($1::text[], $2::text[]) AS m(key, col) ON m.key = e.key)
     WHERE jsonb_typeof(doc) = 'object' AND doc ?| $1::text[]`,
    [[...renamed.keys()], [...renamed.values()]],
  );
}

/** ensureColumns' answer when the table already had every column: no DDL, no lock taken. */
export const noChange: AddedColumn[] = [];

/**
 * Infers the sampled columns' types over every staged row and alters those that differ (always to a
 * more general type: the sample's values are among the whole file's). Returns the changed columns.
 */
export async function widenColumns(
  tx: postgres.TransactionSql,
  target: LoadTarget,
  staged: Staged,
  sampled: AddedColumn[],
): Promise<AddedColumn[]> {
  const { types } = await inferTypes(
    tx,
    staged,
    sampled.map((c) => c.name),
    false,
  );
  const changed = sampled
    .map((c) => ({ name: c.name, type: sqlType[types.get(c.name) ?? 'text'] }))
    .filter((c, i) => c.type !== sampled[i]!.type);
  if (changed.length === 0) return [];
  await widenColumnTypes(tx, target, changed);
  return changed;
}
