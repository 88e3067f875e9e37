import { dropTable, type TableStats } from '../destination/table.js';
import type { ActivityDeps } from './deps.js';
import { loadIngestionContext } from './ingestion-context.js';

/** Drops the destination table; idempotent (`table_existed: false` when there was none). */
export function makeDropTable({ sql }: ActivityDeps) {
  return async function dropDestination(input: { ingestionId: string }): Promise<TableStats> {
    const { destination } = await loadIngestionContext(sql, input.ingestionId);
    return sql.begin((tx) => dropTable(tx, destination));
  };
}
