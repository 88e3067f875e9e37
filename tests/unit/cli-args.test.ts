import { describe, expect, it } from 'vitest';
import { connectionBody } from '../../src/cli/commands/connections.js';
import { ingestionSource, parseColumns, parseFormatOptions } from '../../src/cli/commands/ingestions.js';
import { proceedCommand, refreshBody, toTimestamp } from '../../src/cli/commands/refresh.js';
import { parseInterval, scheduleBody } from '../../src/cli/commands/schedule.js';
import { confirmDestructive } from '../../src/cli/confirm.js';
import { CliError } from '../../src/cli/errors.js';
import type { Io } from '../../src/cli/output.js';

describe('schedule set arguments', () => {
  it('sends a cron expression as given, with the operation in the API spelling', () => {
    expect(scheduleBody({ cron: '0 2 * * *', operation: 'full-refresh', timezone: 'Europe/Berlin' })).toEqual(
      {
        cron: '0 2 * * *',
        operation: 'full_refresh',
        timezone: 'Europe/Berlin',
      },
    );
  });

  it('turns --every into interval_seconds', () => {
    expect(scheduleBody({ every: '15m', paused: true, strategy: 'swap' })).toEqual({
      interval_seconds: 900,
      paused: true,
      strategy: 'swap',
    });
    expect([parseInterval('90'), parseInterval('90s'), parseInterval('1h30m'), parseInterval('2d')]).toEqual([
      90, 90, 5400, 172_800,
    ]);
  });

  it('needs exactly one of --cron and --every', () => {
    expect(() => scheduleBody({})).toThrow(/exactly one of --cron/);
    expect(() => scheduleBody({ cron: '* * * * *', every: '1m' })).toThrow(/exactly one of --cron/);
  });

  it('rejects what the API would reject, before any request', () => {
    expect(() => parseInterval('15 minutes')).toThrow(CliError);
    expect(() => parseInterval('1h+')).toThrow(CliError);
    expect(() => scheduleBody({ every: '0' })).toThrow(/at least 1 second/);
    expect(() => scheduleBody({ cron: '0 2 * * *', operation: 'drop' })).toThrow(
      /--operation must be run or full-refresh/,
    );
    expect(() => scheduleBody({ cron: '0 2 * * *', strategy: 'fast' })).toThrow(/--strategy/);
  });
});

describe('refresh arguments', () => {
  it('always confirms in the body (the CLI asked already) and says whether it is a dry run', () => {
    expect(refreshBody('full-refresh', { dryRun: true })).toEqual({
      confirm: true,
      dry_run: true,
      auto_run: true,
    });
    expect(refreshBody('fresh-start', { autoRun: false })).toEqual({
      confirm: true,
      dry_run: false,
      auto_run: false,
    });
    // Dropping a table starts no run: no auto_run to send.
    expect(refreshBody('drop-table', {})).toEqual({ confirm: true, dry_run: false });
  });

  it('passes the swap strategy and grace period', () => {
    expect(refreshBody('full-refresh', { strategy: 'swap', gracePeriod: '120' })).toMatchObject({
      strategy: 'swap',
      grace_period_seconds: 120,
    });
    expect(() => refreshBody('full-refresh', { gracePeriod: '1.5' })).toThrow(/whole seconds/);
  });

  it('reprocess needs a selection; dates become timestamps with an offset', () => {
    expect(() => refreshBody('reprocess', {})).toThrow(/needs a selection/);
    expect(
      refreshBody('reprocess', { pattern: '2025-01-*/*.jsonl', modifiedFrom: '2025-01-01' }),
    ).toMatchObject({
      pattern: '2025-01-*/*.jsonl',
      modified_from: '2025-01-01T00:00:00Z',
    });
    expect(toTimestamp('2025-01-01T10:00:00', '--x')).toBe('2025-01-01T10:00:00Z');
    expect(toTimestamp('2025-01-01T10:00:00+02:00', '--x')).toBe('2025-01-01T10:00:00+02:00');
    expect(() => toTimestamp('yesterday', '--modified-to')).toThrow(/--modified-to: "yesterday"/);
  });

  it('prints a pasteable command to proceed after a dry run, quoting globs', () => {
    expect(
      proceedCommand('reprocess', 'sales', { pattern: '*.jsonl', modifiedFrom: '2025-01-01', dryRun: true }),
    ).toBe("autoloader reprocess sales --pattern '*.jsonl' --modified-from 2025-01-01 --confirm");
    expect(proceedCommand('full-refresh', 'sales', { strategy: 'swap', autoRun: true })).toBe(
      'autoloader full-refresh sales --strategy swap --confirm',
    );
    // With the dry run's plan: the command runs exactly what was previewed.
    expect(proceedCommand('full-refresh', 'sales', { strategy: 'swap' }, 'plan_8f3k')).toBe(
      'autoloader full-refresh sales --strategy swap --plan plan_8f3k --confirm',
    );
    expect(refreshBody('full-refresh', { plan: 'plan_8f3k' })).toMatchObject({ plan_id: 'plan_8f3k' });
  });
});

describe('connections and ingestions create arguments', () => {
  it('builds a local or s3 connection; credentials only as env-var names', () => {
    expect(connectionBody({ name: 'n', kind: 'local', path: '/data' })).toEqual({
      name: 'n',
      kind: 'local',
      config: { path: '/data' },
    });
    expect(
      connectionBody({
        name: 'm',
        kind: 's3',
        endpoint: 'http://minio:9000',
        forcePathStyle: true,
        accessKeyIdEnv: 'AK',
        secretAccessKeyEnv: 'SK',
      }),
    ).toEqual({
      name: 'm',
      kind: 's3',
      config: {
        endpoint: 'http://minio:9000',
        force_path_style: true,
        access_key_id_env: 'AK',
        secret_access_key_env: 'SK',
      },
    });
    expect(() => connectionBody({ name: 'n', kind: 'local' })).toThrow(/--path/);
    expect(() => connectionBody({ name: 'n', kind: 'ftp' })).toThrow(/--kind must be s3 or local/);
  });

  it('parses format options and declared columns', () => {
    expect(parseFormatOptions(['header=false', 'delimiter=;', 'null_string=NULL'])).toEqual({
      header: false,
      delimiter: ';',
      null_string: 'NULL',
    });
    expect(parseColumns(['id:bigint', 'amount:numeric(12,2)'])).toEqual([
      { name: 'id', type: 'bigint' },
      { name: 'amount', type: 'numeric(12,2)' },
    ]);
    expect(() => parseColumns(['id'])).toThrow(/name:type/);
    expect(() => parseFormatOptions(['=x'])).toThrow(/key=value/);
    expect(
      ingestionSource({
        name: 'e',
        connection: 'c',
        destination: 'raw.e',
        format: 'csv',
        prefix: 'orders/',
        option: ['header=true'],
        column: [],
      }),
    ).toEqual({ format: 'csv', prefix: 'orders/', format_options: { header: true } });
  });
});

function fakeIo(interactive: boolean, answer: string | null) {
  const asked: string[] = [];
  const io: Io = {
    out: () => undefined,
    err: () => undefined,
    interactive,
    progressTty: false,
    columns: 80,
    ask: async (q) => {
      asked.push(q);
      return answer;
    },
    env: {},
  };
  return { io, asked };
}

describe('confirmDestructive', () => {
  const opts = { confirmed: undefined, command: 'full-refresh', what: 'Full refresh of x', dryRun: true };

  it('passes at once with --confirm, without asking', async () => {
    const { io, asked } = fakeIo(true, 'no');
    await confirmDestructive(io, { ...opts, confirmed: true });
    expect(asked).toEqual([]);
  });

  it('refuses without a terminal, naming --confirm, and never asks', async () => {
    const { io, asked } = fakeIo(false, 'yes');
    await expect(confirmDestructive(io, opts)).rejects.toThrow(/needs --confirm \(stdin is not a terminal/);
    expect(asked).toEqual([]);
  });

  it('asks on a terminal: yes proceeds; anything else, or end of input, refuses', async () => {
    const yes = fakeIo(true, 'yes');
    await confirmDestructive(yes.io, opts);
    expect(yes.asked[0]).toContain('Full refresh of x');
    await expect(confirmDestructive(fakeIo(true, 'nope').io, opts)).rejects.toThrow(/not confirmed/);
    await expect(confirmDestructive(fakeIo(true, null).io, opts)).rejects.toThrow(/not confirmed/);
  });
});
