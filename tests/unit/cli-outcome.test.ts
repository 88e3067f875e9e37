import { describe, expect, it } from 'vitest';
import { operationExitCode, operationFinished, runExitCode } from '../../src/cli/outcome.js';

describe('exit codes', () => {
  it('maps run statuses: SUCCESS 0, PARTIAL_SUCCESS 2, FAILED and CANCELLED 1', () => {
    expect(runExitCode('SUCCESS')).toBe(0);
    expect(runExitCode('PARTIAL_SUCCESS')).toBe(2);
    expect(runExitCode('FAILED')).toBe(1);
    expect(runExitCode('CANCELLED')).toBe(1);
    expect(() => runExitCode('RUNNING')).toThrow(/not finished/);
  });

  it('maps operation statuses: success 0, partial_failure 2, failed/cancelled 1', () => {
    expect(operationExitCode('succeeded')).toBe(0);
    expect(operationExitCode('success')).toBe(0);
    expect(operationExitCode('partial_failure')).toBe(2);
    expect(operationExitCode('failed')).toBe(1);
    expect(operationExitCode('cancelled')).toBe(1);
  });

  it('treats a status it does not know as a failure, never as success', () => {
    expect(operationExitCode('exploded')).toBe(1);
  });

  it("takes the worse of the operation and its run's outcome", () => {
    expect(operationExitCode('succeeded', 'SUCCESS')).toBe(0);
    expect(operationExitCode('succeeded', 'PARTIAL_SUCCESS')).toBe(2);
    expect(operationExitCode('succeeded', 'FAILED')).toBe(1);
    // A swap refresh whose shadow run was partial fails the operation: the live table was kept.
    expect(operationExitCode('failed', 'PARTIAL_SUCCESS')).toBe(1);
    expect(operationExitCode('succeeded', null)).toBe(0);
  });
});

describe('operationFinished', () => {
  it('running is not finished; succeeded and failed are', () => {
    expect(operationFinished({ id: 'op', status: 'running', finished_at: null })).toBe(false);
    expect(operationFinished({ id: 'op', status: 'succeeded', finished_at: '2025-01-01T00:00:00Z' })).toBe(
      true,
    );
    expect(operationFinished({ id: 'op', status: 'failed', finished_at: '2025-01-01T00:00:00Z' })).toBe(true);
  });

  it('a partial_failure still being retried (no finished_at) is not finished; one that ended is', () => {
    expect(operationFinished({ id: 'op', status: 'partial_failure', finished_at: null })).toBe(false);
    expect(
      operationFinished({ id: 'op', status: 'partial_failure', finished_at: '2025-01-01T00:00:00Z' }),
    ).toBe(true);
    // An operation of another kind (POST /refresh) may not report finished_at at all.
    expect(operationFinished({ id: 'op', status: 'partial_failure' })).toBe(true);
    expect(operationFinished({ id: 'op', status: 'running' })).toBe(false);
  });
});
