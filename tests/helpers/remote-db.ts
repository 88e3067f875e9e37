import { randomUUID } from 'node:crypto';
import postgres from 'postgres';
import { inject } from 'vitest';
import type { Harness } from './harness.js';

/**
 * A second database in the test cluster, standing in for a tenant's remote Postgres (seed 004's
 * database connections), and a client on it. `drop()` closes the client and drops the database.
 */
export async function createRemoteDatabase(h: Harness, opts: { max?: number } = {}) {
  const url = new URL(inject('databaseUrl'));
  // CREATE DATABASE takes no bind parameter; the name is made here from hex digits.
  const name = `remote_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
  await h.sql.unsafe(`create database ${name}`);
  const sql = postgres({
    host: url.hostname,
    port: Number(url.port),
    user: decodeURIComponent(url.username),
    password: decodeURIComponent(url.password),
    database: name,
    max: opts.max ?? 2,
    onnotice: () => undefined,
  });
  return {
    name,
    sql,
    drop: async () => {
      await sql.end({ timeout: 5 });
      await h.sql.unsafe(`drop database if exists ${name} with (force)`);
    },
  };
}
