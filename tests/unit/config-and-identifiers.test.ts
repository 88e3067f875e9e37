import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { destinationInputSchema } from '../../src/domain/schemas.js';
import { columnNameProblem } from '../../src/lib/identifiers.js';
import { copyChar, quoteIdent } from '../../src/load/sql-text.js';

describe('config', () => {
  it('reads "false" as false and rejects what it cannot parse', () => {
    expect(loadConfig({ TEMPORAL_TLS: 'false' }).temporal.tls).toBe(false);
    expect(loadConfig({ TEMPORAL_TLS: 'true' }).temporal.tls).toBe(true);
    expect(() => loadConfig({ TEMPORAL_TLS: 'maybe' })).toThrow(/TEMPORAL_TLS/);
    expect(() => loadConfig({ API_PORT: 'eighty' })).toThrow(/API_PORT/);
  });
});

describe('identifiers', () => {
  it.each(['raw.events', 'analytics_2.t_1'])('accepts %s', (d) => {
    expect(destinationInputSchema.safeParse(d).success).toBe(true);
  });
  it.each([
    'raw.x; drop table y',
    'Raw.events',
    'raw.',
    'autoloader.runs',
    'pg_catalog.pg_class',
    'a.b.c',
    'raw."x"',
  ])('rejects %s', (d) => {
    expect(destinationInputSchema.safeParse(d).success).toBe(false);
  });
  it('quotes names from the data and refuses what Postgres cannot hold', () => {
    expect(quoteIdent('we"ird')).toBe('"we""ird"');
    expect(columnNameProblem('_source_file')).toMatch(/reserved/);
    expect(columnNameProblem('x'.repeat(64))).toMatch(/63 bytes/);
    expect(columnNameProblem('ok name')).toBeUndefined();
    expect(copyChar('\t')).toBe("E'\\x09'");
  });
});
