import postgres from 'postgres';

/**
 * The driver's error behind whatever wraps it: drizzle wraps postgres.js errors in its own
 * DrizzleQueryError (with the driver's error as `cause`), so an `instanceof` on the outer error misses.
 */
export function postgresErrorOf(err: unknown): postgres.PostgresError | undefined {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (e instanceof postgres.PostgresError) return e;
  }
  return undefined;
}

export function isUniqueViolation(err: unknown, constraint?: string): boolean {
  const pg = postgresErrorOf(err);
  return pg?.code === '23505' && (constraint === undefined || pg.constraint_name === constraint);
}
