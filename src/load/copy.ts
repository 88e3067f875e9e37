import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type postgres from 'postgres';

/**
 * `COPY … FROM STDIN` fed from a stream, failing properly when the server rejects the data, and
 * answering the rows the table took (COPY's command tag: rows a BEFORE trigger suppressed are not
 * counted, the same definition as an INSERT's).
 *
 * postgres.js (3.4) resolves the query with the writable as soon as COPY starts; when the server's
 * error arrives after the last chunk was sent (the usual case: Postgres parses as it receives), it
 * goes to the already-settled query and the writable's `final` never completes — the load would
 * hang. The error still passes through the query's `reject`, so we listen there and fail the copy.
 * The command tag arrives the same way: through a second `resolve`, once the server is ready again.
 */
export async function copyFrom(
  tx: postgres.TransactionSql,
  statement: string,
  source: Readable,
): Promise<{ rows: number }> {
  const query = tx.unsafe(statement) as unknown as postgres.PendingQuery<postgres.Row[]> & {
    reject: (err: unknown) => void;
    resolve: (value: unknown) => void;
  };
  let fail: (err: unknown) => void = () => undefined;
  let done: (count: number | null) => void = () => undefined;
  const serverError = new Promise<never>((_, reject) => {
    fail = reject;
  });
  const completed = new Promise<number | null>((resolve) => {
    done = resolve;
  });
  const originalReject = query.reject;
  query.reject = (err: unknown) => {
    fail(err);
    originalReject(err);
  };
  const originalResolve = query.resolve;
  let resolved = 0;
  query.resolve = (value: unknown) => {
    // The first is the writable (COPY started), the second the result (COPY complete).
    if (++resolved > 1) done((value as { count?: number | null } | undefined)?.count ?? null);
    originalResolve(value);
  };
  // Handled by the race below; without this, a rejection nobody awaits would crash the worker.
  serverError.catch(() => undefined);

  const writable = await query.writable();
  try {
    await Promise.race([pipeline(source, writable), serverError]);
    const rows = await Promise.race([completed, serverError]);
    if (rows === null) throw new Error(`COPY answered no row count: ${statement.slice(0, 80)}`);
    return { rows };
  } catch (err) {
    source.destroy();
    throw err;
  }
}
