import { describe, expect, it } from 'vitest';
import {
  dryRunPreview,
  fmtBytes,
  fmtClock,
  fmtInterval,
  refreshAccepted,
  runSummary,
  table,
} from '../../src/cli/format.js';
import type { RefreshResponseJson, RunJson } from '../../src/cli/types.js';

/** Seed 001's dry-run response for a full refresh, as given in the PRD. */
const seedDryRun: RefreshResponseJson = {
  status: 'dry_run',
  message: 'Preview of operations (not executed)',
  ingestion_id: 'ing-abc123',
  would_perform: [
    {
      operation: 'table_dropped',
      details: { table_name: 'raw.sales_data', current_size_gb: 450.2, current_row_count: 12450000 },
    },
    {
      operation: 'processed_files_cleared',
      details: { files_to_clear: 1247, date_range: '2024-01-01 to 2025-01-04' },
    },
    { operation: 'run_triggered', details: { files_to_process: 1247, data_size_gb: 450.2 } },
  ],
  impact: {
    files_to_process: 1247,
    estimated_data_size_gb: 450.2,
    estimated_cost_usd: 125.5,
    estimated_duration_minutes: 45,
  },
  warnings: ['This will reprocess ALL 1,247 files from scratch', 'Estimated cost: $125.50'],
  notes: ['Current table will be deleted'],
};

describe('dryRunPreview', () => {
  const text = dryRunPreview('full refresh of sales', seedDryRun, 'autoloader full-refresh sales --confirm');
  const lines = text.split('\n');

  it('says nothing was changed, then lists each step with its details in aligned columns', () => {
    expect(lines[0]).toBe('Dry run: full refresh of sales (nothing was changed)');
    const header = lines.indexOf('Would perform');
    expect(lines.slice(header + 1, header + 5)).toEqual([
      '  STEP                     DETAILS',
      '  table_dropped            table_name=raw.sales_data, current_size_gb=450.2, current_row_count=12,450,000',
      '  processed_files_cleared  files_to_clear=1,247, date_range=2024-01-01 to 2025-01-04',
      '  run_triggered            files_to_process=1,247, data_size_gb=450.2',
    ]);
  });

  it('shows the impact in units a person reads: files, GB, dollars, minutes', () => {
    const header = lines.indexOf('Impact');
    expect(lines.slice(header + 1, header + 5)).toEqual([
      '  files to process    1,247',
      '  data size           450.2 GB',
      '  estimated cost      $125.50',
      '  estimated duration  45 min',
    ]);
  });

  it('lists warnings and notes, and ends with the command that proceeds', () => {
    expect(text).toContain(
      '\nWarnings\n  ! This will reprocess ALL 1,247 files from scratch\n  ! Estimated cost: $125.50\n',
    );
    expect(text).toContain('\nNotes\n  - Current table will be deleted\n');
    expect(lines.at(-2)).toBe('To proceed: autoloader full-refresh sales --confirm');
  });

  it('includes files_skipped when the API gives it (fresh start) and leaves out empty sections', () => {
    const fresh = dryRunPreview(
      'fresh start of sales',
      { status: 'dry_run', impact: { ...seedDryRun.impact, files_skipped: 1247 }, warnings: [] },
      'x',
    );
    expect(fresh).toContain('  files skipped       1,247\n');
    expect(fresh).not.toContain('Warnings');
    expect(fresh).not.toContain('Would perform');
  });
});

describe('table', () => {
  it('pads every column but the last to its widest cell', () => {
    expect(table(['A', 'LONG HEADER', 'C'], [['xxxx', 'y', 'a very long last cell']])).toBe(
      'A     LONG HEADER  C\nxxxx  y            a very long last cell\n',
    );
  });
});

describe('refreshAccepted', () => {
  it('shows the operation, run, steps and, for a partial failure, the recovery block', () => {
    const text = refreshAccepted('full refresh of sales', {
      status: 'partial_failure',
      message: 'Some operations failed',
      operation_id: 'op_1',
      run_id: null,
      operations: [
        {
          operation: 'table_dropped',
          status: 'success',
          timestamp: '2025-01-05T10:30:01Z',
          details: { table_name: 'raw.s' },
        },
        {
          operation: 'processed_files_cleared',
          status: 'failed',
          timestamp: '2025-01-05T10:30:02Z',
          details: {},
          error: 'simulated outage',
          error_code: 'DEPENDENCY_UNAVAILABLE',
        },
      ],
      recovery: { message: 'being retried', action: 'Follow GET /api/v1/operations/op_1' },
    });
    expect(text.split('\n')[0]).toBe('full refresh of sales: partial_failure — Some operations failed');
    expect(text).toContain('  operation  op_1\n');
    expect(text).toMatch(
      /^ {2}processed_files_cleared +failed +2025-01-05T10:30:02Z +simulated outage \(DEPENDENCY_UNAVAILABLE\)$/m,
    );
    expect(text).toContain(
      '\nRecovery\n  message  being retried\n  action   Follow GET /api/v1/operations/op_1\n',
    );
  });
});

describe('small formats', () => {
  it('bytes, clock times and intervals', () => {
    expect([fmtBytes(512), fmtBytes(1536), fmtBytes(5 * 1024 ** 3), fmtBytes(null)]).toEqual([
      '512 B',
      '1.5 KB',
      '5.0 GB',
      '-',
    ]);
    expect([fmtClock(42), fmtClock(725), fmtClock(3723)]).toEqual(['0:42', '12:05', '1:02:03']);
    expect([fmtInterval(90), fmtInterval(5400), fmtInterval(86_400), fmtInterval(0)]).toEqual([
      '1m30s',
      '1h30m',
      '1d',
      '0s',
    ]);
  });

  it('summarises a finished run in one line, with its error when it has one', () => {
    const run = {
      id: 'run_1',
      status: 'FAILED',
      files_processed: 1,
      files_failed: 2,
      files_skipped: 0,
      records_written: 1234,
      bytes_read: 2048,
      duration_ms: 1500,
      error: 'bucket gone',
    } as RunJson;
    expect(runSummary(run)).toBe(
      'FAILED  run run_1: 1 file loaded, 2 failed, 0 skipped, 1,234 rows, 2.0 KB read, in 1.5 s\n  error: bucket gone\n',
    );
  });
});
