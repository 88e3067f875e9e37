import { describe, expect, it } from 'vitest';
import type { SourceImpact } from '../../src/activities/estimate-impact.js';
import { computeImpact, impactWarnings } from '../../src/services/impact.js';

const GB = 1024 ** 3;
const src = (over: Partial<SourceImpact> = {}): SourceImpact => ({
  filesTotal: 1247,
  bytesTotal: 450 * GB,
  filesNew: 23,
  bytesNew: 8 * GB,
  historyFiles: 1224,
  historyOldest: '2024-01-01',
  historyNewest: '2025-01-04',
  table: { table_name: 'raw.sales', table_existed: true, table_size_gb: 450, row_count: 12_450_000 },
  ...over,
});
const model = { costPerGbUsd: 0.25, throughputMbPerS: 40, secondsPerFile: 0.01 };

describe('computeImpact', () => {
  it('counts every file for a full refresh and prices it by the GB', () => {
    expect(computeImpact('full_refresh', true, src(), model)).toEqual({
      files_to_process: 1247,
      files_skipped: 0,
      estimated_data_size_bytes: 450 * GB,
      estimated_data_size_gb: 450,
      estimated_cost_usd: 112.5,
      estimated_duration_minutes: Math.ceil(((450 * 1024) / 40 + 1247 * 0.01) / 60),
    });
  });

  it('counts only new files for a fresh start', () => {
    expect(computeImpact('fresh_start', true, src(), model)).toMatchObject({
      files_to_process: 23,
      files_skipped: 1224,
      estimated_cost_usd: 2,
    });
  });

  it('loads nothing without auto_run or for a drop', () => {
    expect(computeImpact('fresh_start', false, src(), model).files_to_process).toBe(0);
    expect(computeImpact('drop_table', true, src(), model)).toMatchObject({
      files_to_process: 0,
      estimated_cost_usd: 0,
    });
  });
});

describe('impactWarnings', () => {
  it('warns above $100 and above 1,000 files, and names the table being deleted', () => {
    const w = impactWarnings('full_refresh', computeImpact('full_refresh', true, src(), model), src());
    expect(w).toContain('HIGH COST OPERATION: Estimated $112.50');
    expect(w).toContain('LARGE OPERATION: Processing 1,247 files');
    expect(w.some((s) => s.includes('raw.sales') && s.includes('will be deleted'))).toBe(true);
  });

  it('stays quiet below the thresholds', () => {
    const small = src({
      filesTotal: 3,
      bytesTotal: 3000,
      table: { table_name: 'raw.t', table_existed: false },
    });
    expect(impactWarnings('fresh_start', computeImpact('fresh_start', true, small, model), small)).toEqual(
      [],
    );
  });
});
