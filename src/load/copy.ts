import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type postgres from 'postgres';

/**
 * `COPY … FROM STDIN` fed from a stream, failing properly when the server rejects the data.
 *
 * postgres.js (3.4) resolves the query with the writable as soon as COPY starts; when the server's
 * error arrives after the last chunk was sent (the usual case: Postgres parses as it receives), it
 * goes to the already-settled query and the writable's `final` never completes — the load would
 * hang. The error still passes through the query's `reject`, so we listen there and fail the copy.
 */
export async function copyFrom(
  tx: postgres.TransactionSql,
  statement: string,
  source: Readable,
): Promise<void> {
  const query = tx.unsafe(statement) as unknown as postgres.PendingQuery<postgres.Row[]> & {
    reject: (err: unknown) => void;
  };
  let fail: (err: unknown) => void = () => undefined;
  const serverError = new Promise<never>((_, reject) => {
    fail = reject;
  });
  const originalReject = query.reject;
  query.reject = (err: unknown) => {
    fail(err);
    originalReject(err);
  };
  // Handled by the race below; without this, a rejection nobody awaits would crash the worker.
  serverError.catch(() => undefined);

  const writable = await query.writable();
  try {
    await Promise.race([pipeline(source, writable), serverError]);
  } catch (err) {
    source.destroy();
    throw err;
  }
}
