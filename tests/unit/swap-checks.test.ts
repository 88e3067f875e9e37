import { describe, expect, it } from 'vitest';
import { failedChecks, measure } from '../../src/refresh/checks.js';

const cols = (...spec: string[]) =>
  spec.map((s) => {
    const [name, type] = s.split(' ');
    return { name: name!, type: type! };
  });

describe('measure', () => {
  it('compares row counts in percent either way, and the columns by name and type', () => {
    const m = measure({
      liveRows: 200,
      shadowRows: 150,
      rejectedRows: 3,
      liveColumns: cols('id bigint', 'name text', 'gone text'),
      shadowColumns: cols('id text', 'name text', 'added double'),
    });
    expect(m).toEqual({
      live_rows: 200,
      shadow_rows: 150,
      row_change_percent: -25,
      rejected_rows: 3,
      columns_added: ['added'],
      columns_dropped: ['gone'],
      types_changed: ['id: bigint → text'],
    });
  });

  it('has no change figure without a live table, and 100% from an empty one', () => {
    expect(
      measure({
        liveRows: null,
        shadowRows: 5,
        rejectedRows: 0,
        liveColumns: null,
        shadowColumns: cols('id bigint'),
      }),
    ).toMatchObject({ row_change_percent: null, columns_added: [], columns_dropped: [] });
    expect(
      measure({ liveRows: 0, shadowRows: 5, rejectedRows: 0, liveColumns: [], shadowColumns: [] })
        .row_change_percent,
    ).toBe(100);
  });
});

describe('failedChecks', () => {
  const m = measure({
    liveRows: 100,
    shadowRows: 111,
    rejectedRows: 2,
    liveColumns: cols('id bigint', 'gone text'),
    shadowColumns: cols('id text'),
  });

  it('passes what is within bounds or not asked', () => {
    expect(failedChecks({}, m)).toEqual([]);
    expect(failedChecks({ max_row_change_percent: 11, max_rejected_rows: 2 }, m)).toEqual([]);
  });

  it('names each check that fails, with the figures', () => {
    expect(
      failedChecks(
        {
          max_row_change_percent: 10,
          max_rejected_rows: 1,
          allow_dropped_columns: false,
          allow_type_changes: false,
        },
        m,
      ),
    ).toEqual([
      'rows change by 11% (100 → 111), more than 10%',
      '2 rows rejected, more than 1',
      'columns missing from the new version: gone',
      'column types changed: id: bigint → text',
    ]);
  });

  it('counts a shrinking table like a growing one', () => {
    const shrunk = measure({
      liveRows: 100,
      shadowRows: 50,
      rejectedRows: 0,
      liveColumns: [],
      shadowColumns: [],
    });
    expect(failedChecks({ max_row_change_percent: 49 }, shrunk)).toHaveLength(1);
  });
});
