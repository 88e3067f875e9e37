import { ApplicationFailure } from '@temporalio/activity';
import postgres from 'postgres';
import { describeTable, dropTable, type TableStats } from '../destination/table.js';
import type { ActivityDeps } from './deps.js';
import { loadIngestionContext } from './ingestion-context.js';

/**
 * Drops the destination table; idempotent (`table_existed: false` when there was none). A table
 * other objects depend on (a user's view) cannot be dropped, and retrying would not change that:
 * the operation fails at once, naming them.
 */
export function makeDropTable({ sql }: ActivityDeps) {
  return async function dropDestination(input: { ingestionId: string }): Promise<TableStats> {
    const { destination } = await loadIngestionContext(sql, input.ingestionId);
    try {
      return await sql.begin((tx) => dropTable(tx, destination));
    } catch (err) {
      if (err instanceof postgres.PostgresError && err.code === '2BP01') {
        throw ApplicationFailure.nonRetryable(
          `${describeTable(destination)} cannot be dropped: ${err.detail ?? 'other objects depend on it'}. Drop or change them first, or use strategy "swap"`,
          'DependentObjects',
        );
      }
      throw err;
    }
  };
}
