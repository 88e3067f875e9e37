import { randomUUID } from 'node:crypto';
import postgres from 'postgres';
import { inject } from 'vitest';
import { migrate } from '../../src/db/migrate.js';

/**
 * A migrated state database of its own in the test cluster, for a test file whose requests reach
 * beyond one tenant: the operator's routes list every tenant's tokens, revoke any of them and
 * replace any tenant's policy, so fuzzing them in the suite's shared database revokes the tokens
 * of test files running beside it. Returns its URL and a `drop()` for afterAll.
 */
export async function privateStateDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const shared = inject('databaseUrl');
  // CREATE DATABASE takes no bind parameter; the name is made here from hex digits.
  const name = `state_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
  const admin = postgres(shared, { max: 1, onnotice: () => undefined });
  try {
    await admin.unsafe(`create database ${name}`);
  } finally {
    await admin.end({ timeout: 5 });
  }
  const url = new URL(shared);
  url.pathname = `/${name}`;
  await migrate(url.toString());
  return {
    url: url.toString(),
    drop: async () => {
      const sql = postgres(shared, { max: 1, onnotice: () => undefined });
      try {
        await sql.unsafe(`drop database if exists ${name} with (force)`);
      } finally {
        await sql.end({ timeout: 5 });
      }
    },
  };
}
