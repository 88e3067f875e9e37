import type postgres from 'postgres';

/**
 * Holds a lock on `table` (schema-qualified, a trusted test name; ACCESS EXCLUSIVE unless `mode`
 * says otherwise) in a transaction of its own until `release()`: whatever needs the table then
 * waits, which makes "while it is still going" tests deterministic. Resolves once the lock is held.
 */
export async function holdLock(
  sql: postgres.Sql,
  table: string,
  mode: 'access exclusive' | 'exclusive' = 'access exclusive',
): Promise<{ release: () => Promise<void> }> {
  let release: () => void = () => undefined;
  const released = new Promise<void>((r) => {
    release = r;
  });
  let locked: () => void = () => undefined;
  const isLocked = new Promise<void>((r) => {
    locked = r;
  });
  const holder = sql.begin(async (tx) => {
    await tx.unsafe(`lock table ${table} in ${mode} mode`);
    locked();
    await released;
  });
  await isLocked;
  return {
    release: async () => {
      release();
      await holder;
    },
  };
}
