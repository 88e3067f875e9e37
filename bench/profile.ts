/**
 * Where a run's database time went, from pg_stat_statements: statements grouped by the step of the
 * load they belong to (see src/load/load-file.ts and src/activities/*).
 */
import type { Sql } from '../src/db/client.js';

export interface StepTime {
  step: string;
  calls: number;
  ms: number;
}

const steps: [string, RegExp][] = [
  // A small file whose fields the table has: claim, delete, insert in one statement.
  ['small file, one statement (src/load/small-file.ts)', /^with lines as materialized/i],
  ['stage COPY (file → temp table)', /^copy pg_temp\._al_/i],
  // The direct path: JSON lines converted to COPY text rows, straight into the typed columns.
  ['direct COPY (file → destination columns)', /^copy "(?!autoloader")[^"]+"\."/i],
  ["direct path: count of the file's rows", /^select count\(\*\)::float8 as n from "/i],
  ['staged keys scan (jsonb_object_keys)', /jsonb_object_keys/i],
  ['type inference query', /jsonb_each\(s?\.?doc\)|count\(\*\) filter \(where c\d/i],
  // Destination statements quote the table name; the service's own tables are autoloader.*.
  ['INSERT … SELECT into destination', /^insert into "(?!autoloader")/i],
  ['DELETE earlier rows of the file', /^delete from "(?!autoloader")/i],
  ['other reads of the staged rows', /from pg_temp\._al_/i],
  ['CREATE TEMP TABLE / DDL', /^(create|alter) /i],
  ['destination catalog reads', /from pg_class c\s+join pg_namespace/i],
  ['COMMIT', /^commit/i],
  // A file that must create the table or add columns waits here for another file's transaction.
  ['DDL lock wait (pg_advisory_xact_lock)', /pg_advisory_xact_lock/i],
  // Reads the listed page's rows; only new or changed files reach its upsert.
  ['discovery (processed_files)', /^with queueable as/i],
  ['claim / mark files (processed_files)', /autoloader\.processed_files/i],
  ['runs bookkeeping', /autoloader\.runs/i],
];

function stepOf(query: string): string {
  const q = query.trim();
  for (const [name, re] of steps) if (re.test(q)) return name;
  return 'other';
}

async function resetStatements(sql: Sql): Promise<void> {
  await sql`select pg_stat_statements_reset()`;
}

/** `fn` (a measured step), with the statement time it spent: the statistics are reset just before it. */
export async function withStatementProfile<T>(
  sql: Sql,
  fn: () => Promise<T>,
): Promise<{ value: T; profile: StepTime[] }> {
  await resetStatements(sql);
  const value = await fn();
  return { value, profile: await statementProfile(sql) };
}

/** Statement time since the last reset, by step, largest first (the bench queries nothing mid-run). */
async function statementProfile(sql: Sql): Promise<StepTime[]> {
  const rows = await sql<{ query: string; calls: number; ms: number }[]>`
    select s.query, s.calls::float8 as calls, s.total_exec_time as ms
    from pg_stat_statements s join pg_database d on d.oid = s.dbid
    where d.datname = current_database()
      and s.query not ilike '%pg_stat_statements%'`;
  // BENCH_STATEMENTS=<n>: the n slowest statements themselves, on stderr (diagnosis).
  const top = Number(process.env.BENCH_STATEMENTS ?? 0);
  for (const r of [...rows].sort((a, b) => b.ms - a.ms).slice(0, top))
    process.stderr.write(
      `[statement] ${r.ms.toFixed(0)} ms, ${r.calls} calls: ${r.query.replace(/\s+/g, ' ').slice(0, 300)}\n`,
    );
  const byStep = new Map<string, StepTime>();
  for (const r of rows) {
    const step = stepOf(r.query);
    const t = byStep.get(step) ?? { step, calls: 0, ms: 0 };
    t.calls += r.calls;
    t.ms += r.ms;
    byStep.set(step, t);
  }
  return [...byStep.values()].sort((a, b) => b.ms - a.ms);
}
