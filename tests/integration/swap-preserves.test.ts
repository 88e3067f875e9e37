import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deletionMaxAttempts } from '../../src/activities/swap.js';
import { workflowIds } from '../../src/temporal/ids.js';
import { pendingDeletionWorkflow } from '../../src/workflows/pending-deletion.js';
import { type Harness, jsonLines, jsonRecords, startHarness } from '../helpers/harness.js';

let h: Harness;
const roles: string[] = [];
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  for (const role of roles) {
    await h?.sql.unsafe(`drop owned by ${role} cascade`);
    await h?.sql.unsafe(`drop role ${role}`);
  }
  await h?.close();
});

/** A role of its own per test file run (roles are cluster-wide; the suite shares one Postgres). */
async function role(kind: string): Promise<string> {
  const name = `al_${kind}_${randomUUID().slice(0, 8)}`;
  await h.sql.unsafe(`create role ${name}`);
  roles.push(name);
  return name;
}

const suffix = () => randomUUID().slice(0, 8);

interface Step {
  operation: string;
  details: Record<string, unknown>;
}
interface DryRun {
  status: string;
  would_perform: Step[];
  warnings: string[];
}
interface Operation {
  status: string;
  error: string | null;
  notes: string[];
  operations: Step[];
}

async function swapRefresh(id: string): Promise<Operation> {
  const res = await h.api<{ operation_id: string }>('POST', `/api/v1/ingestions/${id}/full-refresh`, {
    confirm: true,
    strategy: 'swap',
    grace_period_seconds: 0,
  });
  expect(res.status).toBe(202);
  await h.waitForIngestionIdle(id);
  return (await h.api<Operation>('GET', `/api/v1/operations/${res.body.operation_id}`)).body;
}

async function swapDryRun(id: string): Promise<DryRun & { swap: Record<string, unknown> }> {
  const res = await h.api<DryRun>('POST', `/api/v1/ingestions/${id}/full-refresh`, {
    confirm: true,
    dry_run: true,
    strategy: 'swap',
  });
  expect(res.status).toBe(200);
  const step = res.body.would_perform.find((s) => s.operation === 'table_swapped');
  expect(step).toBeDefined();
  return { ...res.body, swap: step!.details };
}

const count = async (rel: string) =>
  (await h.sql.unsafe<{ n: number }[]>(`select count(*)::int as n from ${rel}`))[0]!.n;

describe('a swap full refresh keeps what users added to the table', () => {
  let id: string;
  let bucket: string;
  let table: string;
  let live: string;
  let reader: string;
  let analyst: string;
  let owner: string;
  let view: string;
  let viewOnView: string;
  let op: Operation;
  let dry: DryRun & { swap: Record<string, unknown> };
  const before: Record<string, unknown> = {};

  const catalog = async () => ({
    policies: await h.sql`
      select policyname, permissive, roles::text[] as roles, cmd, qual, with_check
      from pg_policies where schemaname = 'raw' and tablename = ${table} order by policyname`,
    indexes: await h.sql`
      select indexname, indexdef from pg_indexes
      where schemaname = 'raw' and tablename = ${table} and indexdef not like '%(_source_file)'
      order by indexname`,
    constraints: await h.sql`
      select conname, contype::text, pg_get_constraintdef(oid) as def from pg_constraint
      where conrelid = ${live}::regclass order by conname`,
  });

  beforeAll(async () => {
    const files = { 'a.jsonl': jsonLines(0, 1000), 'b.jsonl': jsonLines(1000, 1000) };
    ({ id, bucket, table } = await h.createIngestion(files, {}, 'keep'));
    live = `raw.${table}`;
    expect((await h.runAndWait(id)).records_written).toBe(2000);
    [reader, analyst, owner] = [await role('reader'), await role('analyst'), await role('owner')];
    view = `raw.v_${suffix()}`;
    viewOnView = `raw.vv_${suffix()}`;
    // What a user adds over time. "user" is a keyword: a column name that must be quoted everywhere.
    await h.sql.unsafe(`
      grant select on ${live} to ${reader};
      grant select (id, amount) on ${live} to ${analyst};
      alter table ${live} enable row level security;
      alter table ${live} force row level security;
      create policy readers_see_positive on ${live} for select to ${reader} using (amount >= 0);
      create policy analysts_insert_own on ${live} as restrictive for insert to ${analyst}, ${reader}
        with check ("user" = current_user);
      create index by_user on ${live} ("user", ts desc) where amount > 10;
      alter table ${live} add primary key (id);
      comment on table ${live} is 'orders; it''s curated';
      comment on column ${live}.amount is 'in EUR';
      alter table ${live} alter column "user" set default 'anonymous';
      alter table ${live} owner to ${owner};
      create view ${view} with (security_barrier = true) as select id, amount from ${live} where amount >= 0;
      grant select on ${view} to ${reader};
      comment on view ${view} is 'positive amounts';
      create view ${viewOnView} as select count(*)::int as n from ${view};
    `);
    Object.assign(before, await catalog());

    dry = await swapDryRun(id);
    // The new version differs from the old one, so a view can tell which one it reads.
    await h.putObject(bucket, 'c.jsonl', jsonLines(2000, 1000));
    op = await swapRefresh(id);
  });

  it('succeeds, and its operation says what was carried over', () => {
    expect(op.status).toBe('success');
    expect(op.operations.map((s) => s.operation)).toEqual([
      'run_triggered',
      'table_swapped',
      'deletion_scheduled',
    ]);
    const took = op.notes.find((n) => n.startsWith('The new version took over'));
    expect(took).toContain('readers_see_positive');
    expect(took).toContain('by_user');
    expect(took).toContain(view);
  });

  it('the dry run showed what would be carried over and which views would be re-pointed', () => {
    expect(dry.swap).toMatchObject({
      would_be_refused: false,
      blocked_by: [],
      carried_over: {
        owner,
        grants: expect.arrayContaining([`SELECT to ${reader}`, `SELECT to ${analyst} on column amount`]),
        row_level_security: 'enabled, forced',
        policies: ['analysts_insert_own', 'readers_see_positive'],
        indexes: expect.arrayContaining(['by_user', `${table}_pkey`]),
        comments: ['table', 'column amount'],
        column_defaults: ['user'],
      },
      views_rebound: [{ view, needs_columns: { id: expect.any(String), amount: expect.any(String) } }],
      views_through: [viewOnView],
    });
    expect(
      dry.warnings.some((w) => w.includes('will be re-created on the new version') && w.includes(view)),
    ).toBe(true);
  });

  it('keeps table and column privileges, mirrored', async () => {
    const [p] = await h.sql`
      select has_table_privilege(${reader}, ${live}, 'SELECT') as reader_reads,
             has_table_privilege(${analyst}, ${live}, 'SELECT') as analyst_reads_table,
             has_column_privilege(${analyst}, ${live}, 'amount', 'SELECT') as analyst_reads_amount,
             has_column_privilege(${analyst}, ${live}, 'user', 'SELECT') as analyst_reads_user`;
    expect(p).toEqual({
      reader_reads: true,
      analyst_reads_table: false,
      analyst_reads_amount: true,
      analyst_reads_user: false,
    });
  });

  it('keeps the owner', async () => {
    const [t] =
      await h.sql`select tableowner from pg_tables where schemaname = 'raw' and tablename = ${table}`;
    expect(t!.tableowner).toBe(owner);
  });

  it('keeps row-level security enabled and forced, with every policy as it was', async () => {
    const [rls] = await h.sql`
      select relrowsecurity, relforcerowsecurity from pg_class where oid = ${live}::regclass`;
    expect(rls).toEqual({ relrowsecurity: true, relforcerowsecurity: true });
    expect((await catalog()).policies).toEqual(before.policies);
    expect(before.policies).toHaveLength(2);
  });

  it('keeps user indexes (under their names) and the primary key', async () => {
    const now = await catalog();
    expect(now.indexes).toEqual(before.indexes);
    expect(now.indexes.map((i) => i.indexname)).toEqual(expect.arrayContaining(['by_user', `${table}_pkey`]));
    expect(now.constraints).toEqual(before.constraints);
  });

  it('keeps the table and column comments', async () => {
    const [c] = await h.sql`
      select obj_description(${live}::regclass, 'pg_class') as t,
             col_description(${live}::regclass, (select attnum from pg_attribute
                                                 where attrelid = ${live}::regclass and attname = 'amount')::int) as amount`;
    expect(c).toEqual({ t: "orders; it's curated", amount: 'in EUR' });
  });

  it('keeps column defaults', async () => {
    const [d] = await h.sql`
      select column_default from information_schema.columns
      where table_schema = 'raw' and table_name = ${table} and column_name = 'user'`;
    expect(d!.column_default).toBe("'anonymous'::text");
  });

  it('re-points the views at the new version, keeping their grants, comment and options', async () => {
    expect(await count(live)).toBe(3000);
    expect(await count(view)).toBe(3000);
    const [vv] = await h.sql.unsafe<{ n: number }[]>(`select n from ${viewOnView}`);
    expect(vv!.n).toBe(3000);
    const [v] = await h.sql`
      select has_table_privilege(${reader}, ${view}, 'SELECT') as granted,
             obj_description(${view}::regclass, 'pg_class') as comment,
             (select reloptions::text[] from pg_class where oid = ${view}::regclass) as options`;
    expect(v).toEqual({ granted: true, comment: 'positive amounts', options: ['security_barrier=true'] });
  });

  it('drops the old version after the grace period', async () => {
    const scheduled = op.operations.find((s) => s.operation === 'deletion_scheduled')!;
    const old = String(scheduled.details.table_name);
    await h.client.workflow.getHandle(workflowIds.deletion(String(scheduled.details.deletion_id))).result();
    const [gone] = await h.sql`select to_regclass(${old}) is null as gone`;
    expect(gone!.gone).toBe(true);
    expect(await count(view)).toBe(3000);
  });
});

describe('what the new version cannot take', () => {
  it('an index on a column the new version lacks is skipped and reported; the rest is carried over', async () => {
    const { id, bucket, table } = await h.createIngestion({ 'a.jsonl': jsonLines(0, 200) }, {}, 'skip');
    const live = `raw.${table}`;
    await h.runAndWait(id);
    await h.sql.unsafe(`
      create index by_amount on ${live} (amount);
      create index by_id on ${live} (id);
      comment on column ${live}.amount is 'gone soon';`);
    await h.putObject(bucket, 'a.jsonl', jsonRecords([{ id: 1, user: 'x' }]));

    const op = await swapRefresh(id);
    expect(op.status).toBe('success');
    const indexes = await h.sql`
      select indexname from pg_indexes where schemaname = 'raw' and tablename = ${table} order by 1`;
    expect(indexes.map((i) => i.indexname)).toContain('by_id');
    expect(indexes.map((i) => i.indexname)).not.toContain('by_amount');
    const skipped = op.notes.find((n) => n.startsWith('Not carried over'));
    expect(skipped).toContain('index by_amount: column amount not in the new version');
    expect(skipped).toContain('comment on column amount');
  });
});

describe('names that need quoting', () => {
  it('a table named like a keyword, with a quoted index name and an expression index', async () => {
    const bucket = await h.createBucket();
    await h.putObject(bucket, 'a.jsonl', jsonLines(0, 100));
    const schema = `kw_${suffix()}`;
    const created = await h.api<{ id: string }>('POST', '/api/v1/ingestions', {
      name: `kw-${suffix()}`,
      connection_id: await h.createS3Connection(),
      source: { bucket, format: 'jsonl' },
      destination: `${schema}.order`,
    });
    expect(created.status).toBe(201);
    const id = created.body.id;
    const live = `${schema}."order"`;
    await h.runAndWait(id);
    await h.sql.unsafe(`
      create index "Order ""By"" User" on ${live} (lower("user")) where amount > 1;
      create view ${schema}."select" as select id, "user" from ${live};`);
    const defs = () => h.sql`
      select indexname, indexdef from pg_indexes
      where schemaname = ${schema} and tablename = 'order' and indexdef not like '%(_source_file)'`;
    const before = await defs();
    await h.putObject(bucket, 'b.jsonl', jsonLines(100, 100));

    const op = await swapRefresh(id);
    expect(op.status).toBe('success');
    expect(await defs()).toEqual(before);
    expect(before).toHaveLength(1);
    expect(await count(`${schema}."select"`)).toBe(200);
  });
});

describe('a swap that would break readers is refused', () => {
  it('a materialized view on the table: the dry run warns, the operation fails naming it, the live table stays', async () => {
    const { id, bucket, table } = await h.createIngestion({ 'a.jsonl': jsonLines(0, 500) }, {}, 'mv');
    const live = `raw.${table}`;
    await h.runAndWait(id);
    const matview = `raw.mv_${suffix()}`;
    await h.sql.unsafe(`create materialized view ${matview} as select id from ${live}`);

    const dry = await swapDryRun(id);
    expect(dry.swap.would_be_refused).toBe(true);
    expect(dry.swap.blocked_by).toEqual([expect.stringContaining(`materialized view ${matview}`)]);
    expect(dry.warnings.some((w) => w.startsWith('SWAP WILL BE REFUSED') && w.includes(matview))).toBe(true);

    await h.putObject(bucket, 'b.jsonl', jsonLines(500, 500));
    const res = await h.api<{ operation_id: string }>('POST', `/api/v1/ingestions/${id}/full-refresh`, {
      confirm: true,
      strategy: 'swap',
      grace_period_seconds: 0,
    });
    await h.waitForIngestionIdle(id);
    const op = (await h.api<Operation>('GET', `/api/v1/operations/${res.body.operation_id}`)).body;
    expect(op.status).toBe('failed');
    expect(op.error).toContain('swap refused');
    expect(op.error).toContain(`materialized view ${matview}`);
    expect(op.operations.map((s) => s.operation)).toEqual(['run_triggered']);

    expect(await count(live)).toBe(500);
    await h.sql.unsafe(`refresh materialized view ${matview}`);
    expect(await count(matview)).toBe(500);
    const shadows =
      await h.sql`select relname from pg_class where relname like ${`_al_${res.body.operation_id}%`}`;
    expect(shadows).toHaveLength(0);
    const pending =
      await h.sql`select 1 from autoloader.pending_deletions where operation_id = ${res.body.operation_id}`;
    expect(pending).toHaveLength(0);
    // The live history is the live table's: the next run loads the new file into it.
    const next = await h.runAndWait(id);
    expect(next).toMatchObject({ status: 'SUCCESS', files_processed: 1, records_written: 500 });
  });

  it('a view reading a column the new version no longer has: refused naming view and column', async () => {
    const { id, bucket, table } = await h.createIngestion({ 'a.jsonl': jsonLines(0, 300) }, {}, 'vcol');
    const live = `raw.${table}`;
    await h.runAndWait(id);
    const view = `raw.v_${suffix()}`;
    await h.sql.unsafe(`create view ${view} as select id, amount from ${live}`);
    // The file is rewritten without "amount": the new version will not have that column.
    await h.putObject(
      bucket,
      'a.jsonl',
      jsonRecords([
        { id: 1, user: 'x' },
        { id: 2, user: 'y' },
      ]),
    );

    const op = await swapRefresh(id);
    expect(op.status).toBe('failed');
    expect(op.error).toContain(`view ${view} reads column amount, which the new version does not have`);
    expect(await count(live)).toBe(300);
    expect(await count(view)).toBe(300);
  });
});

describe('a deletion that the database refuses', () => {
  it('is attempted a bounded number of times, then reported with what to do; started again, it tries once more', async () => {
    const table = `stuck_${suffix()}`;
    const view = `raw.reads_${table}`;
    await h.sql.unsafe(
      `create table raw.${table} (x int); create view ${view} as select x from raw.${table}`,
    );
    const deletionId = `del_${table}`;
    await h.sql`
      insert into autoloader.pending_deletions (id, tenant_id, schema_name, table_name, due_at)
      values (${deletionId}, ${h.tenantId}, 'raw', ${table}, now())`;
    const start = () =>
      h.client.workflow.start(pendingDeletionWorkflow, {
        workflowId: workflowIds.deletion(deletionId),
        taskQueue: h.taskQueue,
        args: [{ deletionId, dueAt: new Date().toISOString() }],
        workflowIdReusePolicy: 'ALLOW_DUPLICATE',
      });

    const first = await start();
    await expect(first.result()).rejects.toThrow();
    const listed = await h.api<{
      items: { id: string; attempts: number; last_error: string | null; failed_at: string | null }[];
    }>('GET', '/api/v1/pending-deletions');
    const item = listed.body.items.find((d) => d.id === deletionId);
    expect(item).toMatchObject({ attempts: deletionMaxAttempts, failed_at: expect.any(String) });
    expect(item!.last_error).toContain(`cannot drop raw.${table}`);
    expect(item!.last_error).toContain(view);
    expect(item!.last_error).toContain('drop the table yourself');
    const [still] = await h.sql`select to_regclass(${`raw.${table}`}) is not null as present`;
    expect(still!.present).toBe(true);

    // Once the user has dealt with the view, a new start of the deletion carries it out.
    await h.sql.unsafe(`drop view ${view}`);
    await (await start()).result();
    const [row] = await h.sql`
      select executed_at is not null as done, failed_at from autoloader.pending_deletions where id = ${deletionId}`;
    expect(row).toEqual({ done: true, failed_at: null });
    const [gone] = await h.sql`select to_regclass(${`raw.${table}`}) is null as gone`;
    expect(gone!.gone).toBe(true);
  });
});
