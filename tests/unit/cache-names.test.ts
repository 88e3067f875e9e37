import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  asideCacheName,
  cacheColumnType,
  cachedTableName,
  versionedCacheName,
} from '../../src/catalog/cache-names.js';
import { isPlainIdentifier } from '../../src/lib/identifiers.js';
import { isReservedTableName } from '../../src/tenancy/ownership.js';

const bytes = (s: string) => Buffer.byteLength(s, 'utf8');

describe('cached table names (seed 004, the contract’s naming rule)', () => {
  it('are <s>__<t> for plain names', () => {
    expect(cachedTableName('public', 'users')).toBe('public__users');
    expect(cachedTableName('app', 'order_items')).toBe('app__order_items');
  });

  it('map odd, mixed-case and long names deterministically to valid identifiers', () => {
    const odd = [
      ['Public', 'Users'],
      ['app', 'order-items'],
      ['sales', 'Ümsatz 2024'],
      ['1schema', 'x'],
      ['_al_schema', 't'],
      ['s'.repeat(40), 't'.repeat(40)],
      ['app', 'v0123abcd'.padStart(20, 'x')],
    ] as const;
    for (const [s, t] of odd) {
      const name = cachedTableName(s, t);
      expect(name, `${s}.${t}`).toBe(cachedTableName(s, t));
      expect(isPlainIdentifier(name), name).toBe(true);
      expect(bytes(name)).toBeLessThanOrEqual(63);
      expect(isReservedTableName(name), name).toBe(false);
    }
    expect(cachedTableName('Public', 'Users')).toMatch(/^public__users_h[0-9a-f]{8}$/);
    // Readable prefix, then the hash.
    expect(cachedTableName('s'.repeat(40), 't'.repeat(40))).toMatch(/^s{40}__t{11}_h[0-9a-f]{8}$/);
  });

  it('tell apart pairs whose plain forms would meet', () => {
    const pairs = [
      [
        ['a__b', 'c'],
        ['a', 'b__c'],
      ],
      [
        ['a_', 'b'],
        ['a', '_b'],
      ],
      [
        ['Users', 'x'],
        ['users', 'x'],
      ],
      [
        ['app', 'a-b'],
        ['app', 'a_b'],
      ],
    ] as const;
    for (const [[s1, t1], [s2, t2]] of pairs)
      expect(cachedTableName(s1, t1), `${s1}.${t1} vs ${s2}.${t2}`).not.toBe(cachedTableName(s2, t2));
  });

  it('never end like a reserved version name', () => {
    // A remote table named like one of our versions is mapped to the hash form.
    const name = cachedTableName('app', 'x__v0123abcd');
    expect(isReservedTableName(name)).toBe(false);
    expect(isReservedTableName(cachedTableName('app', 'x__old_0123abcd'))).toBe(false);
  });
});

describe('versioned cache names', () => {
  it('are unique and well formed: the stable prefix, __v and 8 hex digits, within 63 bytes, reserved', () => {
    for (const stable of [
      cachedTableName('public', 'users'),
      cachedTableName('s'.repeat(40), 't'.repeat(40)),
      cachedTableName('Sales', 'Orders 2024'),
    ]) {
      const seen = new Set<string>();
      for (let i = 0; i < 500; i++) {
        const name = versionedCacheName(stable, randomBytes(4).toString('hex'));
        expect(name).toMatch(/^[a-z_][a-z0-9_]*__v[0-9a-f]{8}$/);
        expect(bytes(name)).toBeLessThanOrEqual(63);
        expect(stable.startsWith(name.slice(0, -11))).toBe(true);
        // An ingestion can never claim a version.
        expect(isReservedTableName(name)).toBe(true);
        expect(name).not.toBe(stable);
        seen.add(name);
      }
      expect(seen.size).toBe(500);
    }
  });

  it('refuse a suffix that is not 8 hex digits', () => {
    expect(() => versionedCacheName('public__users', 'xyz')).toThrow(/8 hex digits/);
    expect(() => versionedCacheName('public__users', '0123ABCD')).toThrow(/8 hex digits/);
  });

  it('put the previous version aside under a name derived from the new one (a retried swap finds it)', () => {
    const stable = cachedTableName('public', 'users');
    const v1 = versionedCacheName(stable, '0123abcd');
    const v2 = versionedCacheName(stable, '89abcdef');
    expect(asideCacheName(stable, v1)).toBe(asideCacheName(stable, v1));
    expect(asideCacheName(stable, v1)).not.toBe(asideCacheName(stable, v2));
    expect(asideCacheName(stable, v1)).not.toBe(v1);
    expect(isReservedTableName(asideCacheName(stable, v1))).toBe(true);
  });
});

describe('cached column types', () => {
  it('keep the built-in types whose text form reads back, and make the rest text', () => {
    for (const t of [
      'integer',
      'bigint',
      'numeric(10,2)',
      'character varying(20)',
      'timestamp with time zone',
      'timestamp(3) without time zone',
      'text[]',
      'jsonb',
      'uuid',
      'boolean',
    ])
      expect(cacheColumnType(t), t).toBe(t);
    for (const t of ['mood', 'public.mood', 'money', 'point', 'int4range', 'tsvector', 'interval day'])
      expect(cacheColumnType(t), t).toBe('text');
  });
});
