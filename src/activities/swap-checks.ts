import { columnsOf } from '../destination/carry-over.js';
import { tableStats } from '../destination/table.js';
import { measure, type SwapMeasures } from '../refresh/checks.js';
import type { ActivityDeps } from './deps.js';
import { loadIngestionContext } from './ingestion-context.js';

/**
 * The figures a swap full refresh's checks compare (src/refresh/checks.ts): the live table's and the
 * loaded shadow's row counts and columns, and the rows the shadow run rejected. Read-only.
 */
export function makeMeasureShadow({ sql }: ActivityDeps) {
  return async function measureShadow(input: {
    ingestionId: string;
    shadowTable: string;
    runId: string;
  }): Promise<SwapMeasures> {
    const { destination } = await loadIngestionContext(sql, input.ingestionId);
    const shadow = { schema: destination.schema, table: input.shadowTable };
    const [live, loaded, liveColumns, shadowColumns, [run]] = await Promise.all([
      tableStats(sql, destination),
      tableStats(sql, shadow),
      columnsOf(sql, destination),
      columnsOf(sql, shadow),
      sql<
        { rejected: number }[]
      >`select rows_rejected::float8 as rejected from autoloader.runs where id = ${input.runId}`,
    ]);
    const asList = (m: Map<string, string>) => [...m].map(([name, type]) => ({ name, type }));
    return measure({
      liveRows: live.table_existed ? (live.row_count ?? 0) : null,
      shadowRows: loaded.row_count ?? 0,
      rejectedRows: run?.rejected ?? 0,
      liveColumns: live.table_existed ? asList(liveColumns) : null,
      shadowColumns: asList(shadowColumns),
    });
  };
}

/**
 * Puts the operation in `awaiting_approval` (its checks' step recorded before), or back to `running`
 * once approved. Idempotent.
 */
export function makeSetAwaitingApproval({ sql }: ActivityDeps) {
  return async function setAwaitingApproval(input: {
    operationId: string;
    awaiting: boolean;
  }): Promise<void> {
    const [from, to] = input.awaiting ? ['running', 'awaiting_approval'] : ['awaiting_approval', 'running'];
    await sql`update autoloader.operations set status = ${to} where id = ${input.operationId} and status = ${from}`;
  };
}
