import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createDb, type Sql } from '../../src/db/client.js';
import { byLineageIndex, deleteRowsOfFile } from '../../src/destination/table.js';

/**
 * The statements that find a file's earlier rows, on a destination that grows from nothing to a
 * million rows while the loader's sessions keep their prepared statements: each must find the rows
 * by the `_source_file` index, never by reading the whole table (a sequential scan per file, or per
 * batch of files, makes a load slower the larger its table grows). Counted with Postgres' own
 * per-transaction scan counter; autovacuum is off for the table, so no ANALYZE comes by to help.
 */
let sql: Sql;
let close: () => Promise<void>;

beforeAll(async () => {
  // One connection: every execution below meets the same prepared statement.
  ({ sql, close } = createDb(inject('databaseUrl'), { max: 1 }));
  await sql`create schema if not exists plan_cache`;
});
afterAll(async () => {
  await close?.();
});

async function growingTable(name: string): Promise<void> {
  await sql.unsafe(`drop table if exists plan_cache.${name}`);
  await sql.unsafe(
    `create table plan_cache.${name} (id bigint, _source_file text not null) with (autovacuum_enabled = false)`,
  );
  await sql.unsafe(`create index on plan_cache.${name} (_source_file)`);
}

async function grow(name: string): Promise<void> {
  await sql.unsafe(
    `insert into plan_cache.${name} select g, 's3://b/f' || (g % 10000) from generate_series(1, 1000000) g`,
  );
}

/** Statistics from when the table held one file's rows: by them, any file holds all the rows. */
async function staleStatistics(name: string): Promise<void> {
  await sql.unsafe(
    `insert into plan_cache.${name} select g, 's3://b/first.jsonl' from generate_series(1, 100) g`,
  );
  await sql.unsafe(`analyze plan_cache.${name}`);
}

/** The sequential scans of the table that `statement` made, run in a transaction of its own. */
function seqScans(name: string, statement: (tx: Sql) => Promise<unknown>): Promise<number> {
  return sql.begin(async (tx) => {
    await statement(tx as unknown as Sql);
    const [r] = await tx.unsafe<{ n: number }[]>(
      `select pg_stat_get_xact_numscans('plan_cache.${name}'::regclass)::int as n`,
    );
    return r!.n;
  });
}

describe("a file's earlier rows, in a table that grows", () => {
  it("are found by the index for one file, whatever the table's statistics say", async () => {
    await growingTable('one');
    // A large file's load: the loader's own statements, deleteRowsOfFile prepared once per connection.
    const earlier = (tx: Sql) =>
      Promise.all(
        byLineageIndex(
          tx as never,
          deleteRowsOfFile(tx as never, { schema: 'plan_cache', table: 'one' }, 's3://b/new.jsonl'),
        ),
      );
    await staleStatistics('one');
    for (let i = 0; i < 10; i++) await seqScans('one', earlier);
    await grow('one');
    expect(await seqScans('one', earlier)).toBe(0);
  });

  it("are found by the index for a batch of files, whatever the table's statistics say", async () => {
    await growingTable('batch');
    // The shape of a group of small files' statement: the files come as a set, the earlier rows of
    // all of them go in one DELETE.
    const earlier = (tx: Sql) => {
      const statement = tx.unsafe(
        `WITH v AS (SELECT * FROM jsonb_to_recordset($1::text::jsonb) AS v(f_source text))
         DELETE FROM plan_cache.batch WHERE _source_file IN (SELECT f_source FROM v)`,
        [JSON.stringify(['s3://b/new-1.jsonl', 's3://b/new-2.jsonl'].map((f) => ({ f_source: f })))],
        { prepare: true },
      );
      return Promise.all(byLineageIndex(tx as never, statement));
    };
    await staleStatistics('batch');
    for (let i = 0; i < 10; i++) await seqScans('batch', earlier);
    await grow('batch');
    expect(await seqScans('batch', earlier)).toBe(0);
  });
});
