import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { systemColumns } from '../domain/lineage.js';
import { qualified, quoteIdent, quoteLiteral } from '../load/sql-text.js';

/**
 * What users add to a destination table, read from the catalog of the live version and carried over
 * to the new version inside the swap transaction: privileges, owner, row-level security and its
 * policies, indexes (with the primary key and unique constraints they back), comments, column
 * defaults; and the views that read the table, re-pointed at the new version.
 *
 * Views: a Postgres view is bound to the table's OID, so after the rename it would go on reading
 * the old version (and keep it from ever being dropped). Each view that reads the live table is
 * re-created in place with `CREATE OR REPLACE VIEW` from its own definition once the new version
 * has the live name: same OID, so its grants, comments, owner and the views built on it stay as
 * they are; its options (security_barrier, check_option, security_invoker) are passed again
 * because CREATE OR REPLACE resets them. Where that cannot work — a materialized view (it cannot be
 * replaced in place), a column the view reads is gone or changed type, a view the service may not
 * replace, any other object bound to the table (a foreign key, a function over its row type, another
 * table's policy) — the swap is refused before anything changes: the live table stays, naming what
 * is in the way, because a swap that breaks readers or leaves an undroppable old version is worse
 * than no swap.
 *
 * Names reach SQL only quoted. The only catalog text spliced into statements is what the server
 * generates for that purpose (pg_get_indexdef, pg_get_expr, pg_get_viewdef), read and replayed with
 * an empty search_path so every name in it is schema-qualified and resolves the same way; the table
 * an index definition names is cut off by its exact, OID-derived prefix, never by searching for a
 * user's name in the text.
 */
type Q = postgres.Sql | postgres.TransactionSql;
type Tx = postgres.TransactionSql;

interface Ref {
  schema: string;
  table: string;
}

/** The swap would break what readers rely on; nothing was changed. */
export class SwapRefused extends Error {
  constructor(
    readonly table: string,
    readonly reasons: string[],
  ) {
    super(`swap refused, ${table} kept as it was and the new version discarded: ${reasons.join('; ')}`);
    this.name = 'SwapRefused';
  }
}

interface Grant {
  /** null: PUBLIC. */
  grantee: string | null;
  privilege: string;
  grantable: boolean;
  /** null: on the table; else on this column. */
  column: string | null;
}

interface Policy {
  name: string;
  permissive: boolean;
  command: string;
  toPublic: boolean;
  roles: string[];
  using: string | null;
  withCheck: string | null;
  columns: string[];
}

interface UserIndex {
  name: string;
  definition: string;
  /** What pg_get_indexdef prints before the access method, derived from the catalog (not the text). */
  prefix: string;
  unique: boolean;
  valid: boolean;
  loaderIndex: boolean;
  constraintType: string | null;
  constraintName: string | null;
  deferrable: boolean | null;
  deferred: boolean | null;
  columns: string[];
  /** Plain key columns, in order (not INCLUDE columns, not expressions). */
  keyColumns: string[];
  tablespace: string | null;
  comment: string | null;
}

interface DependentView {
  schema: string;
  name: string;
  kind: 'v' | 'm';
  owner: string;
  canReplace: boolean;
  definition: string | null;
  options: string[];
  /** The live table's columns the view reads, with their types. */
  columns: Record<string, string>;
}

interface TableExtras {
  owner: string;
  rowSecurity: boolean;
  forceRowSecurity: boolean;
  comment: string | null;
  grants: Grant[];
  policies: Policy[];
  indexes: UserIndex[];
  columnComments: { column: string; comment: string }[];
  defaults: { column: string; expression: string }[];
  ownedSequences: { schema: string; name: string; column: string }[];
  views: DependentView[];
  /** Views (and materialized views) on those views: they read the new version through them. */
  viewsThrough: string[];
  /** Other objects bound to the table that would keep the old version from being dropped. */
  otherDependents: string[];
  notCarried: string[];
}

const privileges = new Set([
  'SELECT',
  'INSERT',
  'UPDATE',
  'DELETE',
  'TRUNCATE',
  'REFERENCES',
  'TRIGGER',
  'MAINTAIN',
]);
const policyCommands: Record<string, string> = {
  '*': 'ALL',
  r: 'SELECT',
  a: 'INSERT',
  w: 'UPDATE',
  d: 'DELETE',
};

const name = (schema: string, rel: string) => `${schema}.${rel}`;

async function relation(
  q: Q,
  t: Ref,
): Promise<
  | {
      oid: string;
      owner: string;
      rowSecurity: boolean;
      forceRowSecurity: boolean;
      comment: string | null;
      rowType: string;
      arrayType: string;
      options: string[] | null;
    }
  | undefined
> {
  const [rel] = await q<
    {
      oid: string;
      owner: string;
      rowSecurity: boolean;
      forceRowSecurity: boolean;
      comment: string | null;
      rowType: string;
      arrayType: string;
      options: string[] | null;
    }[]
  >`
    select c.oid::text as oid, pg_get_userbyid(c.relowner)::text as owner, c.relrowsecurity as "rowSecurity",
           c.relforcerowsecurity as "forceRowSecurity", obj_description(c.oid, 'pg_class') as comment,
           c.reltype::text as "rowType", t.typarray::text as "arrayType", c.reloptions::text[] as options
    from pg_class c join pg_namespace n on n.oid = c.relnamespace join pg_type t on t.oid = c.reltype
    where n.nspname = ${t.schema} and c.relname = ${t.table} and c.relkind in ('r', 'p')`;
  return rel;
}

/** Table and column privileges, the owner's own included (acldefault when none were ever granted). */
async function readGrants(q: Q, oid: string): Promise<Grant[]> {
  return q<Grant[]>`
    select case when a.grantee = 0 then null else pg_get_userbyid(a.grantee)::text end as grantee,
           a.privilege_type as privilege, a.is_grantable as grantable, null::text as "column"
    from pg_class c, aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) a
    where c.oid = ${oid}::oid
    union all
    select case when a.grantee = 0 then null else pg_get_userbyid(a.grantee)::text end,
           a.privilege_type, a.is_grantable, att.attname::text
    from pg_attribute att, aclexplode(att.attacl) a
    where att.attrelid = ${oid}::oid and att.attnum > 0 and not att.attisdropped and att.attacl is not null`;
}

async function readIndexes(q: Q, oid: string): Promise<UserIndex[]> {
  return q<UserIndex[]>`
    select ic.relname::text as name, pg_get_indexdef(i.indexrelid) as definition,
           'CREATE ' || case when i.indisunique then 'UNIQUE ' else '' end || 'INDEX ' || quote_ident(ic.relname)
             || ' ON ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname) || ' USING ' as prefix,
           i.indisunique as unique, i.indisvalid as valid,
           (not i.indisunique and i.indnatts = 1 and i.indexprs is null and i.indpred is null and am.amname = 'btree'
             and (select a.attname from pg_attribute a where a.attrelid = i.indrelid and a.attnum = i.indkey[0]) = '_source_file'
           ) as "loaderIndex",
           con.contype::text as "constraintType", con.conname::text as "constraintName",
           con.condeferrable as deferrable, con.condeferred as deferred,
           -- key and INCLUDE columns, and those its expressions and predicate use (a constraint's
           -- index has no column dependencies of its own: they are the constraint's)
           array(select a.attname::text from pg_attribute a
                 where a.attrelid = i.indrelid and a.attnum > 0
                   and (a.attnum = any(i.indkey) or exists (
                     select 1 from pg_depend d
                     where d.classid = 'pg_class'::regclass and d.objid = i.indexrelid
                       and d.refclassid = 'pg_class'::regclass and d.refobjid = i.indrelid and d.refobjsubid = a.attnum))
                 order by a.attnum) as columns,
           array(select a.attname::text from generate_series(0, i.indnkeyatts - 1) k
                 join pg_attribute a on a.attrelid = i.indrelid and a.attnum = i.indkey[k]
                 order by k) as "keyColumns",
           ts.spcname::text as tablespace, obj_description(i.indexrelid, 'pg_class') as comment
    from pg_index i
    join pg_class ic on ic.oid = i.indexrelid
    join pg_am am on am.oid = ic.relam
    join pg_class c on c.oid = i.indrelid
    join pg_namespace n on n.oid = c.relnamespace
    left join pg_constraint con on con.conindid = i.indexrelid and con.conrelid = i.indrelid
    left join pg_tablespace ts on ts.oid = ic.reltablespace
    where i.indrelid = ${oid}::oid
    order by ic.relname`;
}

async function readExtras(q: Q, t: Ref): Promise<TableExtras | undefined> {
  const rel = await relation(q, t);
  if (!rel) return undefined;
  const { oid } = rel;
  const policies = await q<Policy[]>`
    select p.polname::text as name, p.polpermissive as permissive, p.polcmd::text as command,
           0 = any(p.polroles) as "toPublic",
           array(select pg_get_userbyid(r)::text from unnest(p.polroles) r where r <> 0 order by 1) as roles,
           pg_get_expr(p.polqual, p.polrelid) as using, pg_get_expr(p.polwithcheck, p.polrelid) as "withCheck",
           array(select a.attname::text from pg_depend d
                 join pg_attribute a on a.attrelid = d.refobjid and a.attnum = d.refobjsubid
                 where d.classid = 'pg_policy'::regclass and d.objid = p.oid and d.refclassid = 'pg_class'::regclass
                   and d.refobjid = p.polrelid and d.refobjsubid > 0) as columns
    from pg_policy p where p.polrelid = ${oid}::oid order by p.polname`;
  const columnComments = await q<{ column: string; comment: string }[]>`
    select a.attname::text as "column", col_description(a.attrelid, a.attnum) as comment
    from pg_attribute a
    where a.attrelid = ${oid}::oid and a.attnum > 0 and not a.attisdropped
      and col_description(a.attrelid, a.attnum) is not null
    order by a.attnum`;
  const defaults = await q<{ column: string; expression: string }[]>`
    select a.attname::text as "column", pg_get_expr(d.adbin, d.adrelid) as expression
    from pg_attrdef d join pg_attribute a on a.attrelid = d.adrelid and a.attnum = d.adnum
    where d.adrelid = ${oid}::oid and a.attgenerated = '' and not a.attisdropped
    order by a.attnum`;
  const ownedSequences = await q<{ schema: string; name: string; column: string }[]>`
    select sn.nspname::text as schema, s.relname::text as name, a.attname::text as "column"
    from pg_depend d
    join pg_class s on s.oid = d.objid and s.relkind = 'S'
    join pg_namespace sn on sn.oid = s.relnamespace
    join pg_attribute a on a.attrelid = d.refobjid and a.attnum = d.refobjsubid
    where d.classid = 'pg_class'::regclass and d.refclassid = 'pg_class'::regclass
      and d.refobjid = ${oid}::oid and d.deptype = 'a'`;
  const views = await q<DependentView[]>`
    select vn.nspname::text as schema, v.relname::text as name, v.relkind::text as kind,
           pg_get_userbyid(v.relowner)::text as owner, pg_has_role(v.relowner, 'USAGE') as "canReplace",
           case when v.relkind = 'v' then pg_get_viewdef(v.oid) end as definition,
           coalesce(v.reloptions, '{}')::text[] as options,
           coalesce((select jsonb_object_agg(a.attname, format_type(a.atttypid, a.atttypmod))
                     from pg_depend d join pg_attribute a on a.attrelid = d.refobjid and a.attnum = d.refobjsubid
                     where d.classid = 'pg_rewrite'::regclass and d.objid = r.oid
                       and d.refclassid = 'pg_class'::regclass and d.refobjid = ${oid}::oid
                       and d.refobjsubid > 0), '{}'::jsonb) as columns
    from pg_rewrite r
    join pg_class v on v.oid = r.ev_class
    join pg_namespace vn on vn.oid = v.relnamespace
    where v.oid <> ${oid}::oid and v.relkind in ('v', 'm')
      and r.oid in (select d.objid from pg_depend d where d.classid = 'pg_rewrite'::regclass
                    and d.refclassid = 'pg_class'::regclass and d.refobjid = ${oid}::oid)
    order by 1, 2`;
  const through = await q<{ name: string }[]>`
    with recursive through(oid) as (
      select r.ev_class from pg_depend d join pg_rewrite r on r.oid = d.objid
      where d.classid = 'pg_rewrite'::regclass and d.refclassid = 'pg_class'::regclass
        and d.refobjid = ${oid}::oid and r.ev_class <> ${oid}::oid
      union
      select r.ev_class from through t
      join pg_depend d on d.classid = 'pg_rewrite'::regclass and d.refclassid = 'pg_class'::regclass and d.refobjid = t.oid
      join pg_rewrite r on r.oid = d.objid
      where r.ev_class <> t.oid
    )
    select n.nspname::text || '.' || c.relname::text as name
    from through t join pg_class c on c.oid = t.oid join pg_namespace n on n.oid = c.relnamespace
    where c.relkind in ('v', 'm') order by 1`;
  const otherDependents = await q<{ what: string }[]>`
    select distinct pg_describe_object(d.classid, d.objid, d.objsubid) as what
    from pg_depend d
    where d.deptype = 'n'
      and ((d.refclassid = 'pg_class'::regclass and d.refobjid = ${oid}::oid)
        or (d.refclassid = 'pg_type'::regclass and d.refobjid in (${rel.rowType}::oid, ${rel.arrayType}::oid)))
      and not (d.classid = 'pg_class'::regclass and d.objid = ${oid}::oid)
      -- the table's own parts (its indexes, constraints, policies, triggers) go with it
      and not exists (select 1 from pg_depend own
                      where own.classid = d.classid and own.objid = d.objid and own.refclassid = 'pg_class'::regclass
                        and own.refobjid = ${oid}::oid and own.deptype in ('a', 'i'))
      -- views are re-pointed or refused on their own terms
      and not (d.classid = 'pg_rewrite'::regclass and exists (
        select 1 from pg_rewrite r join pg_class v on v.oid = r.ev_class
        where r.oid = d.objid and v.relkind in ('v', 'm')))
    order by 1`;
  const notCarried = await q<{ what: string }[]>`
    select 'constraint ' || quote_ident(conname) || ' (' || pg_get_constraintdef(oid) || ')' as what
    from pg_constraint where conrelid = ${oid}::oid and contype not in ('p', 'u')
    union all
    select 'trigger ' || quote_ident(tgname) from pg_trigger where tgrelid = ${oid}::oid and not tgisinternal
    union all
    select 'rule ' || quote_ident(rulename) from pg_rewrite where ev_class = ${oid}::oid
    union all
    select 'statistics object ' || quote_ident(stxname) from pg_statistic_ext where stxrelid = ${oid}::oid
    union all
    select 'publication ' || quote_ident(p.pubname)
    from pg_publication_rel pr join pg_publication p on p.oid = pr.prpubid where pr.prrelid = ${oid}::oid
    union all
    select case when a.attidentity <> '' then 'identity of column ' else 'generated column ' end || quote_ident(a.attname)
    from pg_attribute a
    where a.attrelid = ${oid}::oid and a.attnum > 0 and not a.attisdropped and (a.attidentity <> '' or a.attgenerated <> '')
    union all
    select 'NOT NULL on column ' || quote_ident(a.attname)
    from pg_attribute a
    where a.attrelid = ${oid}::oid and a.attnum > 0 and not a.attisdropped and a.attnotnull
      and a.attidentity = '' and not (a.attname = any(${[...systemColumns]}::text[]))
      and not exists (select 1 from pg_index i where i.indrelid = a.attrelid and i.indisprimary and a.attnum = any(i.indkey))`;
  const storage = rel.options?.length ? [`storage parameters (${rel.options.join(', ')})`] : [];
  const indexes = await readIndexes(q, oid);
  const directViews = new Set(views.map((v) => name(v.schema, v.name)));
  return {
    owner: rel.owner,
    rowSecurity: rel.rowSecurity,
    forceRowSecurity: rel.forceRowSecurity,
    comment: rel.comment,
    grants: await readGrants(q, oid),
    policies,
    indexes,
    columnComments,
    defaults: defaults.filter((d) => !systemColumns.has(d.column)),
    ownedSequences,
    views,
    viewsThrough: through.map((v) => v.name).filter((v) => !directViews.has(v)),
    otherDependents: otherDependents.map((d) => d.what),
    notCarried: [
      ...notCarried.map((n) => n.what),
      ...storage,
      ...indexes.filter((i) => !i.valid).map((i) => `invalid index ${quoteIdent(i.name)}`),
    ],
  };
}

const granteeSql = (g: string | null) => (g === null ? 'PUBLIC' : quoteIdent(g));
const granteeText = (g: string | null) => g ?? 'PUBLIC';

/** The user's indexes, as the swap would recreate them (not the loader's own, nor invalid ones). */
const userIndexes = (x: TableExtras) =>
  x.indexes.filter(
    (i) => i.valid && !i.loaderIndex && (i.constraintType === null || ['p', 'u'].includes(i.constraintType)),
  );

function describeGrants(grants: Grant[], owner: string): string[] {
  const byKey = new Map<string, string[]>();
  for (const g of grants) {
    if (g.grantee === owner) continue;
    const key = `${granteeText(g.grantee)}${g.column === null ? '' : ` on column ${g.column}`}${g.grantable ? ' with grant option' : ''}`;
    byKey.set(key, [...(byKey.get(key) ?? []), g.privilege]);
  }
  return [...byKey].map(([key, privs]) => `${privs.join(', ')} to ${key}`);
}

function describeRowSecurity(x: TableExtras): string | null {
  if (!x.rowSecurity && !x.forceRowSecurity) return null;
  return [x.rowSecurity && 'enabled', x.forceRowSecurity && 'forced'].filter(Boolean).join(', ');
}

/** Why the swap cannot go ahead, given the new version's columns (undefined: not known yet, as in a dry run). */
function blockers(live: Ref, x: TableExtras, newColumns?: Map<string, string>): string[] {
  const table = name(live.schema, live.table);
  const out: string[] = [];
  for (const v of x.views) {
    const view = name(v.schema, v.name);
    if (v.kind === 'm') {
      out.push(
        `materialized view ${view} reads ${table} and cannot be re-pointed at the new version (drop it before the refresh and re-create it after)`,
      );
      continue;
    }
    if (!v.canReplace) {
      out.push(`view ${view} reads ${table} and is owned by ${v.owner}, whom the service cannot act as`);
      continue;
    }
    if (!newColumns) continue;
    for (const [column, type] of Object.entries(v.columns)) {
      const now = newColumns.get(column);
      if (now === undefined)
        out.push(`view ${view} reads column ${column}, which the new version does not have`);
      else if (now !== type)
        out.push(`view ${view} reads column ${column} as ${type}, which the new version has as ${now}`);
    }
  }
  for (const what of x.otherDependents)
    out.push(`${what} depends on ${table} and cannot be moved to the new version`);
  if (newColumns) {
    for (const p of x.policies) {
      const missing = p.columns.filter((c) => !newColumns.has(c));
      if (missing.length > 0)
        out.push(`policy ${p.name} uses column ${missing.join(', ')}, which the new version does not have`);
    }
  }
  return out;
}

/** What a swap would carry over and what stands in its way, for the dry run (snake_case: it is API output). */
export interface SwapPreview {
  carried_over: {
    owner: string;
    grants: string[];
    row_level_security: string | null;
    policies: string[];
    indexes: string[];
    comments: string[];
    column_defaults: string[];
  };
  /** Re-created on the new version, if it still has these columns with these types. */
  views_rebound: { view: string; needs_columns: Record<string, string> }[];
  /** Built on those views: unchanged, they read the new version through them. */
  views_through: string[];
  /** Each of these makes the swap refuse (the live table stays). */
  blocked_by: string[];
  not_carried_over: string[];
}

export async function previewSwap(q: Q, live: Ref): Promise<SwapPreview | null> {
  const x = await readExtras(q, live);
  if (!x) return null;
  return {
    carried_over: {
      owner: x.owner,
      grants: describeGrants(x.grants, x.owner),
      row_level_security: describeRowSecurity(x),
      policies: x.policies.map((p) => p.name),
      indexes: userIndexes(x).map((i) => i.name),
      comments: [
        ...(x.comment === null ? [] : ['table']),
        ...x.columnComments.map((c) => `column ${c.column}`),
      ],
      column_defaults: x.defaults.map((d) => d.column),
    },
    views_rebound: x.views
      .filter((v) => v.kind === 'v' && v.canReplace)
      .map((v) => ({ view: name(v.schema, v.name), needs_columns: v.columns })),
    views_through: x.viewsThrough,
    blocked_by: blockers(live, x),
    not_carried_over: x.notCarried,
  };
}

/** What a swap carried over, for the operation's notes and the log. */
export interface CarriedOver {
  owner: string | null;
  grants: string[];
  row_level_security: string | null;
  policies: string[];
  indexes: string[];
  comments: string[];
  column_defaults: string[];
  views_rebound: string[];
  views_through: string[];
  /** Things of the live table the new version could not take, with why. */
  skipped: string[];
  not_carried_over: string[];
}

export const nothingCarried = (): CarriedOver => ({
  owner: null,
  grants: [],
  row_level_security: null,
  policies: [],
  indexes: [],
  comments: [],
  column_defaults: [],
  views_rebound: [],
  views_through: [],
  skipped: [],
  not_carried_over: [],
});

/** A Postgres error that retrying will not fix (this object cannot be made so), as opposed to an outage. */
function isObjectError(err: unknown): err is postgres.PostgresError {
  if (!(err instanceof postgres.PostgresError)) return false;
  const transient = ['08', '40', '53', '57', '58', 'XX'].some((c) => err.code.startsWith(c));
  return !transient && err.code !== '55P03';
}

/** Runs `fn` in a savepoint: the error message when the object could not be made, undefined when it was. */
async function attempt(tx: Tx, fn: (sp: Tx) => Promise<unknown>): Promise<string | undefined> {
  try {
    await tx.savepoint(fn);
    return undefined;
  } catch (err) {
    if (isObjectError(err)) return err.message;
    throw err;
  }
}

const sideName = (original: string, tag: 'new' | 'old') =>
  `${original.slice(0, 40)}__${tag}_${randomBytes(4).toString('hex')}`;

interface BuiltIndex {
  index: UserIndex;
  /** Its name on the new version until the swap gives it the original one. */
  tempName: string;
}

/**
 * Builds the live table's indexes on the new version (under temporary names: the originals are
 * still taken). Done before the live table is locked, so readers wait only for the renames. An
 * index whose columns the new version lacks is skipped; one that cannot be built is skipped too,
 * unless it is unique (a primary key, a unique constraint): then the guarantee readers rely on does
 * not hold for the new rows, and the swap is refused.
 */
async function buildIndexes(
  tx: Tx,
  live: Ref,
  target: Ref,
  indexes: UserIndex[],
  newColumns: Map<string, string>,
  out: CarriedOver,
): Promise<BuiltIndex[]> {
  const built: BuiltIndex[] = [];
  const refusals: string[] = [];
  for (const index of indexes) {
    const missing = index.columns.filter((c) => !newColumns.has(c));
    if (missing.length > 0) {
      out.skipped.push(
        `index ${index.name}: column ${missing.join(', ')} not in the new version, so it was not recreated`,
      );
      continue;
    }
    // pg_get_indexdef prints exactly `CREATE [UNIQUE] INDEX <index> ON <schema>.<table> USING ...`,
    // each name through quote_ident; the prefix is built the same way from the catalog.
    if (!index.definition.startsWith(index.prefix)) {
      out.skipped.push(`index ${index.name}: its definition could not be read, so it was not recreated`);
      continue;
    }
    const rest = index.definition.slice(index.prefix.length);
    const tempName = sideName(index.name, 'new');
    const error = await attempt(tx, async (sp) => {
      await sp.unsafe(
        `CREATE ${index.unique ? 'UNIQUE ' : ''}INDEX ${quoteIdent(tempName)} ON ${qualified(target.schema, target.table)} USING ${rest}`,
      );
      if (index.tablespace)
        await sp.unsafe(
          `ALTER INDEX ${qualified(target.schema, tempName)} SET TABLESPACE ${quoteIdent(index.tablespace)}`,
        );
      // A primary key needs NOT NULL columns: set here, on the shadow, not under the live table's lock.
      if (index.constraintType === 'p') {
        await sp.unsafe(
          `ALTER TABLE ${qualified(target.schema, target.table)} ${index.keyColumns.map((c) => `ALTER COLUMN ${quoteIdent(c)} SET NOT NULL`).join(', ')}`,
        );
      }
    });
    if (error === undefined) built.push({ index, tempName });
    else if (index.unique)
      refusals.push(`unique index ${index.name} cannot be built on the new version (${error})`);
    else out.skipped.push(`index ${index.name}: could not be built on the new version (${error})`);
  }
  if (refusals.length > 0) throw new SwapRefused(name(live.schema, live.table), refusals);
  return built;
}

/**
 * The new version's owner, privileges, row-level security, comments and defaults made the live
 * table's. Privileges are mirrored, not merged: what the live table had revoked (say a default
 * privilege for PUBLIC) stays revoked on the new version.
 */
async function carryTableProperties(
  tx: Tx,
  target: Ref,
  x: TableExtras,
  newColumns: Map<string, string>,
  out: CarriedOver,
): Promise<void> {
  const table = qualified(target.schema, target.table);
  const rel = (await relation(tx, target))!;
  let owner = rel.owner;
  if (x.owner !== owner) {
    // Only when the service may act as that role; otherwise the service keeps owning the new
    // version, and the live owner's own privileges are granted to it below.
    const error = await attempt(tx, (sp) =>
      sp.unsafe(`ALTER TABLE ${table} OWNER TO ${quoteIdent(x.owner)}`),
    );
    if (error === undefined) {
      owner = x.owner;
      out.owner = x.owner;
    } else out.skipped.push(`owner ${x.owner}: the new version stays owned by ${owner} (${error})`);
  }

  const existing = await readGrants(tx, rel.oid);
  for (const grantee of new Set(existing.filter((g) => g.grantee !== owner).map((g) => g.grantee))) {
    await tx.unsafe(`REVOKE ALL ON TABLE ${table} FROM ${granteeSql(grantee)}`);
  }
  const wanted = x.grants.filter((g) => g.grantee !== owner);
  const statements = new Map<string, { sql: string; label: string }>();
  for (const g of wanted) {
    if (!privileges.has(g.privilege)) {
      out.skipped.push(
        `privilege ${g.privilege} to ${granteeText(g.grantee)}: not a table privilege this service knows`,
      );
      continue;
    }
    if (g.column !== null && !newColumns.has(g.column)) {
      out.skipped.push(
        `${g.privilege} on column ${g.column} to ${granteeText(g.grantee)}: column not in the new version`,
      );
      continue;
    }
    const on = g.column === null ? '' : ` (${quoteIdent(g.column)})`;
    const key = `${g.privilege}${on}`;
    const who = `${granteeSql(g.grantee)}${g.grantable ? ' WITH GRANT OPTION' : ''}`;
    statements.set(`${key}\u0000${who}`, {
      sql: `GRANT ${g.privilege}${on} ON TABLE ${table} TO ${who}`,
      label: `${g.privilege}${g.column === null ? '' : ` on column ${g.column}`} to ${granteeText(g.grantee)}`,
    });
  }
  for (const s of statements.values()) {
    const error = await attempt(tx, (sp) => sp.unsafe(s.sql));
    if (error === undefined) out.grants.push(s.label);
    else out.skipped.push(`${s.label}: ${error}`);
  }

  if (x.rowSecurity || x.forceRowSecurity) {
    const parts = [
      x.rowSecurity && 'ENABLE ROW LEVEL SECURITY',
      x.forceRowSecurity && 'FORCE ROW LEVEL SECURITY',
    ].filter(Boolean);
    await tx.unsafe(`ALTER TABLE ${table} ${parts.join(', ')}`);
    out.row_level_security = describeRowSecurity(x);
  }

  if (x.comment !== null) {
    await tx.unsafe(`COMMENT ON TABLE ${table} IS ${quoteLiteral(x.comment)}`);
    out.comments.push('table');
  }
  for (const c of x.columnComments) {
    if (!newColumns.has(c.column)) {
      out.skipped.push(`comment on column ${c.column}: column not in the new version`);
      continue;
    }
    await tx.unsafe(`COMMENT ON COLUMN ${table}.${quoteIdent(c.column)} IS ${quoteLiteral(c.comment)}`);
    out.comments.push(`column ${c.column}`);
  }

  // A sequence owned by a live column would be dropped with the old version, and take the carried
  // default (and the old version's drop) with it: it follows its column to the new version.
  const noDefault = new Set<string>();
  for (const s of x.ownedSequences) {
    if (!newColumns.has(s.column)) continue;
    const error = await attempt(tx, (sp) =>
      sp.unsafe(`ALTER SEQUENCE ${qualified(s.schema, s.name)} OWNED BY ${table}.${quoteIdent(s.column)}`),
    );
    if (error !== undefined) {
      noDefault.add(s.column);
      out.skipped.push(
        `sequence ${s.schema}.${s.name} of column ${s.column}, and that column's default: ${error}`,
      );
    }
  }
  for (const d of x.defaults) {
    if (noDefault.has(d.column)) continue;
    if (!newColumns.has(d.column)) {
      out.skipped.push(`default of column ${d.column}: column not in the new version`);
      continue;
    }
    const error = await attempt(tx, (sp) =>
      sp.unsafe(`ALTER TABLE ${table} ALTER COLUMN ${quoteIdent(d.column)} SET DEFAULT ${d.expression}`),
    );
    if (error === undefined) out.column_defaults.push(d.column);
    else out.skipped.push(`default of column ${d.column} (${d.expression}): ${error}`);
  }
}

function policySql(table: string, p: Policy): string {
  const command = policyCommands[p.command] ?? 'ALL';
  const roles = [...(p.toPublic ? ['PUBLIC'] : []), ...p.roles.map(quoteIdent)];
  return [
    `CREATE POLICY ${quoteIdent(p.name)} ON ${table}`,
    `AS ${p.permissive ? 'PERMISSIVE' : 'RESTRICTIVE'} FOR ${command}`,
    `TO ${roles.length > 0 ? roles.join(', ') : 'PUBLIC'}`,
    p.using === null ? '' : `USING (${p.using})`,
    p.withCheck === null ? '' : `WITH CHECK (${p.withCheck})`,
  ].join(' ');
}

/**
 * `name=value` reloptions of a view as a WITH clause: names as the catalog has them (checked to be
 * plain words), values as literals. undefined when an option does not look like one.
 */
function viewOptions(options: string[]): string | undefined {
  const parts: string[] = [];
  for (const o of options) {
    const at = o.indexOf('=');
    const key = o.slice(0, at);
    if (at < 1 || !/^[a-z_]+$/.test(key)) return undefined;
    parts.push(`${key} = ${quoteLiteral(o.slice(at + 1))}`);
  }
  return parts.length > 0 ? ` WITH (${parts.join(', ')})` : '';
}

/**
 * Seed 004's swap with everything users added to the live table carried over, inside the caller's
 * transaction (which should be a savepoint: a SwapRefused thrown from here leaves work to undo).
 * `target` is the new version, `oldName` the name the live version is renamed to. Returns what was
 * carried over; throws SwapRefused, having changed nothing that commits, when readers would break.
 */
export async function swapWithCarryOver(
  tx: Tx,
  live: Ref,
  target: Ref,
  oldName: string,
): Promise<CarriedOver> {
  const out = nothingCarried();
  const liveTable = qualified(live.schema, live.table);
  const liveName = name(live.schema, live.table);
  // Every name in server-generated definitions comes out schema-qualified, and resolves the same
  // way when replayed below (pg_catalog is always searched first).
  const [path] = await tx<{ path: string }[]>`select current_setting('search_path') as path`;
  await tx`select set_config('search_path', '', true)`;

  const newColumns = await columnsOf(tx, target);
  const early = await readExtras(tx, live);
  if (!early) throw new Error(`${liveName} disappeared during the swap`);
  const refusedEarly = blockers(live, early, newColumns);
  if (refusedEarly.length > 0) throw new SwapRefused(liveName, refusedEarly);
  const built = await buildIndexes(tx, live, target, userIndexes(early), newColumns, out);

  // From here on the live table is locked: what is read now is what gets carried over.
  await tx.unsafe(`LOCK TABLE ${liveTable} IN ACCESS EXCLUSIVE MODE`);
  const x = (await readExtras(tx, live))!;
  const refused = blockers(live, x, newColumns);
  if (refused.length > 0) throw new SwapRefused(liveName, refused);
  // Indexes made or dropped by someone between the first look and the lock.
  const wanted = new Map(userIndexes(x).map((i) => [i.name, i]));
  const stale = built.filter((b) => !wanted.has(b.index.name));
  for (const b of stale) await tx.unsafe(`DROP INDEX ${qualified(target.schema, b.tempName)}`);
  const kept = built.filter((b) => wanted.has(b.index.name));
  const seen = new Set([...kept.map((b) => b.index.name), ...early.indexes.map((i) => i.name)]);
  const late = [...wanted.values()].filter((i) => !seen.has(i.name));
  const indexes = [...kept, ...(await buildIndexes(tx, live, target, late, newColumns, out))];

  await carryTableProperties(tx, target, x, newColumns, out);

  // The new version's indexes take their original names: scripts and monitoring refer to them.
  // The old version's are renamed aside (it is dropped after the grace period).
  for (const b of indexes)
    await tx.unsafe(
      `ALTER INDEX ${qualified(live.schema, b.index.name)} RENAME TO ${quoteIdent(sideName(b.index.name, 'old'))}`,
    );
  await tx.unsafe(`ALTER TABLE ${liveTable} RENAME TO ${quoteIdent(oldName)}`);
  await tx.unsafe(
    `ALTER TABLE ${qualified(target.schema, target.table)} RENAME TO ${quoteIdent(live.table)}`,
  );
  for (const { index, tempName } of indexes) {
    if (index.constraintType === 'p' || index.constraintType === 'u') {
      // USING INDEX renames the index after the constraint: the two names are one, as on the live table.
      const kind = index.constraintType === 'p' ? 'PRIMARY KEY' : 'UNIQUE';
      const timing = index.deferrable
        ? ` DEFERRABLE INITIALLY ${index.deferred ? 'DEFERRED' : 'IMMEDIATE'}`
        : '';
      await tx.unsafe(
        `ALTER TABLE ${liveTable} ADD CONSTRAINT ${quoteIdent(index.constraintName!)} ${kind} USING INDEX ${quoteIdent(tempName)}${timing}`,
      );
    } else {
      await tx.unsafe(`ALTER INDEX ${qualified(live.schema, tempName)} RENAME TO ${quoteIdent(index.name)}`);
    }
    const finalName = index.constraintName ?? index.name;
    if (index.comment !== null)
      await tx.unsafe(
        `COMMENT ON INDEX ${qualified(live.schema, finalName)} IS ${quoteLiteral(index.comment)}`,
      );
    out.indexes.push(finalName);
  }

  // Policies and views come after the rename: a reference to the table in their text now means
  // the new version. A policy that cannot be carried would widen or narrow access silently, a
  // view that cannot be re-created would break its readers: either refuses the swap.
  const failures: string[] = [];
  for (const p of x.policies) {
    const error = await attempt(tx, (sp) => sp.unsafe(policySql(liveTable, p)));
    if (error === undefined) out.policies.push(p.name);
    else failures.push(`policy ${p.name} cannot be re-created on the new version (${error})`);
  }
  for (const v of x.views) {
    const view = name(v.schema, v.name);
    const definition = v.definition!.trim().replace(/;$/, '');
    const options = viewOptions(v.options);
    if (options === undefined) {
      failures.push(`view ${view} has options this service cannot re-create (${v.options.join(', ')})`);
      continue;
    }
    const error = await attempt(tx, (sp) =>
      sp.unsafe(`CREATE OR REPLACE VIEW ${qualified(v.schema, v.name)}${options} AS ${definition}`),
    );
    if (error === undefined) out.views_rebound.push(view);
    else failures.push(`view ${view} cannot be re-pointed at the new version (${error})`);
  }
  if (failures.length > 0) throw new SwapRefused(liveName, failures);
  out.views_through = x.viewsThrough;
  out.not_carried_over = x.notCarried;

  await tx`select set_config('search_path', ${path!.path}, true)`;
  return out;
}

/**
 * Readies a version set aside by a swap to take the live name again (a rollback): inside the
 * caller's transaction, its own copies of what a swap carries over as named objects — the users'
 * indexes, the primary key and unique constraints, the policies — are dropped, so that
 * swapWithCarryOver, carrying the live table's over, neither duplicates an index nor meets a
 * second primary key or a policy of the same name. The version comes back with what users have on
 * the live table now.
 */
export async function dropCarriedOver(tx: Tx, t: Ref): Promise<void> {
  const x = await readExtras(tx, t);
  if (!x) return;
  const table = qualified(t.schema, t.table);
  for (const p of x.policies) await tx.unsafe(`DROP POLICY ${quoteIdent(p.name)} ON ${table}`);
  for (const i of userIndexes(x)) {
    if (i.constraintName)
      await tx.unsafe(`ALTER TABLE ${table} DROP CONSTRAINT ${quoteIdent(i.constraintName)}`);
    else await tx.unsafe(`DROP INDEX ${qualified(t.schema, i.name)}`);
  }
}

/** A table's columns and their types (format_type), in column order; empty when there is no table. */
export async function columnsOf(q: Q, t: Ref): Promise<Map<string, string>> {
  const rows = await q<{ name: string; type: string }[]>`
    select a.attname::text as name, format_type(a.atttypid, a.atttypmod) as type
    from pg_attribute a join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = ${t.schema} and c.relname = ${t.table} and a.attnum > 0 and not a.attisdropped
    order by a.attnum`;
  return new Map(rows.map((r) => [r.name, r.type]));
}
