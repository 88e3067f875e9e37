import { describe, expect, it } from 'vitest';
import { emptyCounts, inferColumnType, type ValueCounts } from '../../src/load/inference.js';

const counts = (c: Partial<ValueCounts>): ValueCounts => ({ ...emptyCounts, ...c });

describe('inferColumnType', () => {
  it.each([
    ['all null', counts({}), 'text'],
    ['integers', counts({ nonNull: 5, integers: 5, numbers: 5 }), 'bigint'],
    ['integers widened by one decimal', counts({ nonNull: 5, integers: 4, numbers: 5 }), 'numeric'],
    ['numbers mixed with a string', counts({ nonNull: 5, integers: 4, numbers: 4 }), 'text'],
    ['booleans', counts({ nonNull: 3, booleans: 3 }), 'boolean'],
    ['dates', counts({ nonNull: 3, dates: 3 }), 'date'],
    ['timestamps and dates together', counts({ nonNull: 3, dates: 1, timestamps: 2 }), 'timestamptz'],
    ['objects', counts({ nonNull: 2, nested: 2 }), 'jsonb'],
    [
      'objects mixed with scalars keep JSON',
      counts({ nonNull: 2, nested: 1, integers: 1, numbers: 1 }),
      'jsonb',
    ],
  ])('%s → %s', (_label, c, expected) => {
    expect(inferColumnType(c)).toBe(expected);
  });
});
