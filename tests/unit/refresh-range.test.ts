import { describe, expect, it } from 'vitest';
import { rangeOfDays } from '../../src/api/routes/refresh-range.js';
import { AppError } from '../../src/domain/errors.js';

/** The contract: date-only bounds are whole UTC days, both inclusive. */
describe('rangeOfDays', () => {
  it('maps start_date to its midnight and end_date to the midnight after it (exclusive)', () => {
    expect(rangeOfDays('2025-01-01', '2025-01-31')).toEqual({
      modifiedFrom: '2025-01-01T00:00:00.000Z',
      modifiedTo: '2025-02-01T00:00:00.000Z',
    });
    expect(rangeOfDays('2025-01-31', '2025-01-31')).toEqual({
      modifiedFrom: '2025-01-31T00:00:00.000Z',
      modifiedTo: '2025-02-01T00:00:00.000Z',
    });
  });

  it('crosses month, year and leap-day ends', () => {
    expect(rangeOfDays('2024-02-29', '2024-02-29').modifiedTo).toBe('2024-03-01T00:00:00.000Z');
    expect(rangeOfDays('2024-12-31', '2024-12-31').modifiedTo).toBe('2025-01-01T00:00:00.000Z');
  });

  it('refuses an end before the start, naming end_date', () => {
    try {
      rangeOfDays('2025-02-01', '2025-01-31');
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(AppError);
      expect(err).toMatchObject({ code: 'VALIDATION_ERROR', extra: { field: 'end_date' } });
    }
  });
});
