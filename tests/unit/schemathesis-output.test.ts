import { describe, expect, it } from 'vitest';
import { printableSummary } from '../helpers/schemathesis-output.js';

// The tail of a real Schemathesis 4 run (api-fuzz.test.ts, seed 20261201), as CI printed it.
const output = [
  'Examples phase (in 1.20s)',
  '=================================== WARNINGS ===================================',
  '',
  'Missing test data: 30 operations repeatedly returned 404 responses',
  '=================================== SUMMARY ====================================',
  '',
  'Test cases:',
  '  4075 generated, 4075 passed',
  '',
  'Seed: 20261201',
  '',
  '============================= 3 warnings in 58.13s =============================',
  '',
].join('\n');

describe('printableSummary (the fuzz test log)', () => {
  it('keeps the warnings and the summary but not the pytest-style closing line', () => {
    const printed = printableSummary(output);
    expect(printed).toContain('Missing test data: 30 operations');
    expect(printed).toContain('4075 generated, 4075 passed');
    expect(printed).not.toMatch(/warnings in 58\.13s/);
    expect(printed).not.toContain('Examples phase');
  });

  it('drops a closing line that counts passed cases as well', () => {
    const closing = '========================= 12 passed, 1 warning in 3.02s ==========================';
    expect(printableSummary(`WARNINGS\nsomething\n${closing}\n`)).toBe('WARNINGS\nsomething\n');
  });

  it('prints nothing when the run had no warnings section', () => {
    expect(printableSummary('==== 3 passed in 1.0s ====')).toBe('');
  });
});
