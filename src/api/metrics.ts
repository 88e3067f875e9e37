import type { Sql } from '../db/client.js';

const durationBuckets = [1, 5, 15, 30, 60, 300, 900, 1800, 3600, 7200];
const costBuckets = [0.01, 0.1, 1, 10, 100, 500, 1000];

const esc = (v: string) => v.replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('\n', '\\n');
const labels = (l: Record<string, string>) =>
  `{${Object.entries(l)
    .map(([k, v]) => `${k}="${esc(v)}"`)
    .join(',')}}`;

function histogram(name: string, help: string, byType: Map<string, number[]>, buckets: number[]): string[] {
  const out = [`# HELP ${name} ${help}`, `# TYPE ${name} histogram`];
  for (const [type, values] of byType) {
    for (const le of buckets) {
      out.push(
        `${name}_bucket${labels({ operation_type: type, le: String(le) })} ${values.filter((v) => v <= le).length}`,
      );
    }
    out.push(`${name}_bucket${labels({ operation_type: type, le: '+Inf' })} ${values.length}`);
    out.push(`${name}_sum${labels({ operation_type: type })} ${values.reduce((s, v) => s + v, 0)}`);
    out.push(`${name}_count${labels({ operation_type: type })} ${values.length}`);
  }
  return out;
}

/**
 * Prometheus exposition computed from Postgres, the durable record every API and worker instance
 * shares: any instance answers the same totals, and a restart loses nothing.
 */
export async function renderMetrics(sql: Sql): Promise<string> {
  const [ops, finished, runs, files] = await Promise.all([
    sql<{ type: string; status: string; n: number }[]>`
      select action as type, result as status, count(*)::int as n from autoloader.audit_events
      where not dry_run group by 1, 2 order by 1, 2`,
    sql<{ type: string; seconds: number; cost: number }[]>`
      select type, extract(epoch from finished_at - created_at)::float8 as seconds,
             coalesce((impact->>'estimated_cost_usd')::float8, 0) as cost
      from autoloader.operations where finished_at is not null`,
    sql<{ status: string; n: number; records: number; bytes: number }[]>`
      select status, count(*)::int as n, coalesce(sum(records_written), 0)::float8 as records,
             coalesce(sum(bytes_read), 0)::float8 as bytes
      from autoloader.runs group by 1 order by 1`,
    sql<{ status: string; n: number }[]>`
      select status, count(*)::int as n from autoloader.processed_files where scope = 'live' group by 1 order by 1`,
  ]);
  const durations = new Map<string, number[]>();
  const costs = new Map<string, number[]>();
  for (const f of finished) {
    durations.set(f.type, [...(durations.get(f.type) ?? []), f.seconds]);
    costs.set(f.type, [...(costs.get(f.type) ?? []), f.cost]);
  }
  const lines = [
    '# HELP autoloader_refresh_operations_total Refresh operations by type and result.',
    '# TYPE autoloader_refresh_operations_total counter',
    ...ops.map(
      (o) =>
        `autoloader_refresh_operations_total${labels({ operation_type: o.type, status: o.status })} ${o.n}`,
    ),
    ...histogram(
      'autoloader_refresh_duration_seconds',
      'Duration of finished refresh operations.',
      durations,
      durationBuckets,
    ),
    ...histogram(
      'autoloader_refresh_cost_usd',
      'Estimated cost of finished refresh operations.',
      costs,
      costBuckets,
    ),
    '# HELP autoloader_runs_total Ingestion runs by status.',
    '# TYPE autoloader_runs_total counter',
    ...runs.map((r) => `autoloader_runs_total${labels({ status: r.status })} ${r.n}`),
    '# HELP autoloader_records_written_total Rows written by runs.',
    '# TYPE autoloader_records_written_total counter',
    `autoloader_records_written_total ${runs.reduce((s, r) => s + r.records, 0)}`,
    '# HELP autoloader_bytes_read_total Bytes read from sources by runs.',
    '# TYPE autoloader_bytes_read_total counter',
    `autoloader_bytes_read_total ${runs.reduce((s, r) => s + r.bytes, 0)}`,
    '# HELP autoloader_files Files in the live history of all ingestions, by status.',
    '# TYPE autoloader_files gauge',
    ...files.map((f) => `autoloader_files${labels({ status: f.status })} ${f.n}`),
  ];
  return `${lines.join('\n')}\n`;
}
