import { describe, expect, it } from 'vitest';
import { type PlanOptions, type PlanSnapshot, planChanges } from '../../src/refresh/plan.js';

const snapshot = (): PlanSnapshot => ({
  source: { files: 3, bytes: 300, newest_modified_at: '2026-12-01T10:00:00.000Z', keys_hash: 'aaa' },
  history: { SUCCESS: 3 },
  table: { row_count: 30, columns: ['id bigint', 'name text'] },
});
const options = (): PlanOptions => ({ strategy: 'swap', auto_run: true });

describe('planChanges', () => {
  it('finds nothing when nothing changed', () => {
    expect(
      planChanges({ options: options(), snapshot: snapshot() }, { options: options(), snapshot: snapshot() }),
    ).toEqual([]);
  });

  it('names a file added: count, bytes and newest time, not the hash as well', () => {
    const now = snapshot();
    now.source = { files: 4, bytes: 410, newest_modified_at: '2026-12-01T11:00:00.000Z', keys_hash: 'bbb' };
    expect(
      planChanges({ options: options(), snapshot: snapshot() }, { options: options(), snapshot: now }),
    ).toEqual([
      { what: 'source.files', planned: 3, now: 4 },
      { what: 'source.bytes', planned: 300, now: 410 },
      {
        what: 'source.newest_modified_at',
        planned: '2026-12-01T10:00:00.000Z',
        now: '2026-12-01T11:00:00.000Z',
      },
    ]);
  });

  it('tells a file replaced by one of the same size and time by its keys and ETags', () => {
    const now = snapshot();
    now.source.keys_hash = 'ccc';
    expect(
      planChanges({ options: options(), snapshot: snapshot() }, { options: options(), snapshot: now }),
    ).toEqual([{ what: 'source.keys_and_etags', planned: 'aaa', now: 'ccc' }]);
  });

  it('compares the history by status, a status missing on one side counting as 0', () => {
    const now = snapshot();
    now.history = { SUCCESS: 2, FAILED: 1 };
    expect(
      planChanges({ options: options(), snapshot: snapshot() }, { options: options(), snapshot: now }),
    ).toEqual([
      { what: 'history.FAILED', planned: 0, now: 1 },
      { what: 'history.SUCCESS', planned: 3, now: 2 },
    ]);
  });

  it('names a table whose rows or columns changed, and options other than the plan’s', () => {
    const now = snapshot();
    now.table = { row_count: 31, columns: ['id bigint', 'name text', 'extra double precision'] };
    expect(
      planChanges(
        { options: options(), snapshot: snapshot() },
        { options: { strategy: 'drop', auto_run: true }, snapshot: now },
      ),
    ).toEqual([
      { what: 'strategy', planned: 'swap', now: 'drop' },
      { what: 'table.row_count', planned: 30, now: 31 },
      {
        what: 'table.columns',
        planned: ['id bigint', 'name text'],
        now: ['id bigint', 'name text', 'extra double precision'],
      },
    ]);
  });
});
