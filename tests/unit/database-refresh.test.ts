import { describe, expect, it } from 'vitest';
import { refreshRequestProblem, refreshRequestSchema } from '../../src/services/database-refresh.js';
import { columnFingerprint, postgresConnectionConfigSchema } from '../../src/sources/postgres.js';

const problem = (body: unknown) => refreshRequestProblem(refreshRequestSchema.parse(body))?.message;

describe('POST /refresh validation (seed 004)', () => {
  it('accepts the shapes the seed handles', () => {
    for (const body of [
      {},
      { connection_id: 'c' },
      { connection_id: 'c', data: true },
      { connection_id: 'c', schema_name: 's', table_name: 't', data: true },
    ])
      expect(problem(body), JSON.stringify(body)).toBeUndefined();
  });

  it('checks the rules in the seed’s order', () => {
    // Both rule 1 and rule 3 apply: the seed reports the first.
    expect(problem({ schema_name: 's', data: true })).toBe(
      'Invalid body: schema_name requires connection_id',
    );
    expect(problem({ table_name: 't', data: true })).toBe('Invalid body: table_name requires schema_name');
  });

  it('refuses unknown fields', () => {
    expect(refreshRequestSchema.safeParse({ connection: 'c' }).success).toBe(false);
  });
});

describe('column fingerprint', () => {
  const cols = [
    { name: 'id', type: 'bigint', nullable: false, position: 1 },
    { name: 'name', type: 'text', nullable: true, position: 2 },
  ];
  it('changes with a column’s name, type, nullability or order', () => {
    const base = columnFingerprint(cols);
    expect(columnFingerprint(cols.map((c) => ({ ...c })))).toBe(base);
    expect(columnFingerprint([cols[0]!, { ...cols[1]!, type: 'varchar(10)' }])).not.toBe(base);
    expect(columnFingerprint([cols[0]!, { ...cols[1]!, nullable: false }])).not.toBe(base);
    expect(columnFingerprint([cols[0]!, { ...cols[1]!, name: 'title' }])).not.toBe(base);
    expect(columnFingerprint([cols[1]!, cols[0]!])).not.toBe(base);
  });
});

describe('postgres connection config', () => {
  const config = {
    host: 'db.example.com',
    database: 'shop',
    user: 'reader',
    password: { secret: 'shop-password' },
    cache_schema: 'shop_cache',
  };
  it('defaults to port 5432 and TLS without certificate checks', () => {
    expect(postgresConnectionConfigSchema.parse(config)).toMatchObject({ port: 5432, ssl_mode: 'require' });
  });
  it('takes the password by reference only, and a plain cache schema', () => {
    expect(postgresConnectionConfigSchema.safeParse({ ...config, password: 'hunter2' }).success).toBe(false);
    for (const cache_schema of ['Cache', 'pg_cache', 'autoloader', 'a-b'])
      expect(
        postgresConnectionConfigSchema.safeParse({ ...config, cache_schema }).success,
        cache_schema,
      ).toBe(false);
    expect(postgresConnectionConfigSchema.safeParse({ ...config, schemas: ['a', 'a'] }).success).toBe(false);
  });
});
