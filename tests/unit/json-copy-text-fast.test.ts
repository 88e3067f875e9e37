import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  type ConversionOptions,
  jsonLinesAsCopyText,
  NeedsStaging,
  type TextCopyColumns,
} from '../../src/load/json-copy-text.js';
import { jsonCopyTextWasm } from '../../src/load/json-copy-text-wasm.js';
import { seededRandom } from '../helpers/fault-plan.js';

/**
 * The WebAssembly fast path must convert exactly as the JS converter does: the same rows, the same
 * record count, and the same refusal (line and reason) for a line the staged path must take. Both
 * convert the same generated files here, with a fixed seed, cut into chunks at random places.
 */
const columns: TextCopyColumns = {
  byKey: new Map([
    ['a', 0],
    ['ab', 1],
    ['abc', 2],
    ['é', 3],
    ['j', 4],
    ['k', 5],
  ]),
  kinds: ['scalar', 'scalar', 'scalar', 'scalar', 'jsonb', 'jsonb'],
};
const keys = [...columns.byKey.keys()];
const suffix = Buffer.from('\ts3://bucket/x.jsonl\trun');

type Outcome = { text: string; records: number } | { refused: string };

async function convert(chunks: Buffer[], options: ConversionOptions): Promise<Outcome> {
  const count = { records: 0 };
  const out: Buffer[] = [];
  try {
    for await (const b of jsonLinesAsCopyText(chunks, columns, suffix, count, options))
      out.push(Buffer.from(b));
  } catch (err) {
    if (err instanceof NeedsStaging) return { refused: err.message };
    throw err;
  }
  return { text: Buffer.concat(out).toString('latin1'), records: count.records };
}

function generator(seed: number) {
  const random = seededRandom(seed);
  const int = (n: number) => Math.floor(random() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  const chance = (p: number) => random() < p;
  const ws = () => (chance(0.7) ? '' : pick([' ', '  ', '\t', ' \t ']));

  const strings = ['x', '', 'hello world', 'é ü 😀', 'a{b}[c]', 'comma, colon: "', '\\\\'];
  const escapes = ['\\"', '\\\\', '\\n', '\\t', '\\/', '\\u00e9', '\\ud83d\\ude00', '\\r'];
  const badEscapes = ['\\u0000', '\\ud800', '\\x', '\\'];
  const string = (errors: boolean): string => {
    let s = pick(strings).replaceAll('"', '\\"');
    if (chance(0.3)) s += pick(escapes);
    if (errors && chance(0.02)) s += pick(badEscapes);
    if (errors && chance(0.01)) s += '\t';
    return `"${s}${chance(0.5) ? pick(strings).replaceAll('"', '') : ''}"`;
  };
  const numbers = ['0', '7', '-12', '3.25', '-0.5', '100000000000000000000', '12.50'];
  const badNumbers = ['-0', '-0.00', '1E3', '2e-1', '012', '1.', '-', '.5'];
  const number = (errors: boolean) => (errors && chance(0.03) ? pick(badNumbers) : pick(numbers));
  const nested = (depth: number, errors: boolean): string => {
    const items = Array.from({ length: int(4) }, () => {
      const r = random();
      if (depth < 3 && r < 0.3) return nested(depth + 1, errors);
      if (r < 0.6) return string(errors);
      if (r < 0.8) return number(false);
      return pick(['true', 'false', 'null']);
    });
    const sep = () => `${ws()},${chance(0.05) ? '\t' : ws()}`;
    if (chance(0.5)) return `[${ws()}${items.join(sep())}${ws()}]`;
    return `{${items.map((v, i) => `"k${i}"${ws()}:${ws()}${v}`).join(sep())}}`;
  };
  const value = (col: number, errors: boolean): string => {
    const jsonb = columns.kinds[col] === 'jsonb';
    const r = random();
    if (r < 0.1) return 'null';
    if (r < 0.15) return pick(['true', 'false']);
    if (errors && r < 0.16) return pick(['tru', 'nul', 'falsy', '"open', '{"x": 1', '[1, 2']);
    if (r < 0.4) return jsonb || (errors && chance(0.02)) ? nested(0, errors) : number(errors);
    if (r < 0.55) return number(errors);
    return string(errors);
  };

  let order = [...keys.keys()];
  /** One line: mostly the last line's key order, some keys left out; errors only if `errors`. */
  const line = (errors: boolean): string => {
    if (chance(0.03)) return pick(['', '   ', '\t']);
    if (chance(0.1)) order = [...order].sort(() => random() - 0.5);
    const present = order.filter(() => chance(0.85));
    const fields = present.map((col) => `"${keys[col]}"${ws()}:${ws()}${value(col, errors)}`);
    if (errors && chance(0.01)) fields.push(`"${pick(['zz', 'abcd', 'A'])}": 1`);
    if (errors && chance(0.01) && present.length > 0) fields.push(`"${keys[present[0]!]}": 2`);
    if (errors && chance(0.005)) fields.push('"a" 1');
    let text = `{${ws()}${fields.join(`${ws()},${ws()}`)}${ws()}}`;
    if (errors && chance(0.005)) text += pick([' x', '}', ',']);
    if (errors && chance(0.003)) text = pick(['[1]', '"x"', '{"a\\u0062": 1}']);
    return text + (chance(0.1) ? '\r' : '') + ws();
  };

  /** A file of `lines` lines, cut into chunks at random places. */
  const file = (lines: number, errors: boolean): Buffer[] => {
    const text = Buffer.from(
      `${Array.from({ length: lines }, () => line(errors)).join('\n')}${chance(0.5) ? '\n' : ''}`,
    );
    const chunks: Buffer[] = [];
    for (let at = 0; at < text.length; ) {
      const n = chance(0.2) ? 1 + int(8) : 1 + int(4000);
      chunks.push(text.subarray(at, at + n));
      at += n;
    }
    return chunks;
  };
  return { file };
}

describe('the WebAssembly fast path of the JSON-lines converter', () => {
  it('converts generated files exactly as the JS converter does, refusals included', async () => {
    const { file } = generator(20261207);
    const stats = { fastLines: 0 };
    const refusals = new Set<string>();
    let converted = 0;
    for (let i = 0; i < 400; i++) {
      const chunks = file(1 + (i % 80), i % 2 === 1);
      const fast = await convert(chunks, { stats });
      expect(fast, `file ${i}`).toEqual(await convert(chunks, { fast: false }));
      if ('refused' in fast) refusals.add(fast.refused.replace(/^line \d+: /, ''));
      else converted++;
    }
    // The comparison means something only if both kinds of file occur and the fast path ran.
    expect(converted).toBeGreaterThan(150);
    expect(refusals.size).toBeGreaterThan(10);
    expect(stats.fastLines).toBeGreaterThan(5000);
  });

  it('converts long files in slices, lines longer than a slice included', async () => {
    const long = `{"a": 1, "j": ${JSON.stringify({ s: 'x'.repeat(300_000) })}}`;
    const lines = [
      ...Array.from({ length: 20_000 }, (_, i) => `{"a": ${i}, "k": [${i}, "\\t"]}`),
      long,
      '{"a": 2}',
    ];
    const whole = Buffer.from(`${lines.join('\n')}\n`);
    const stats = { fastLines: 0 };
    const fast = await convert([whole], { stats });
    expect(fast).toEqual(await convert([whole], { fast: false }));
    expect(stats.fastLines).toBeGreaterThan(19_000);
  });

  it('is built from its source (npm run build:wasm)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'wasm-'));
    try {
      execFileSync(
        process.execPath,
        ['--import', 'tsx', 'scripts/build-wasm.ts', '--out', join(dir, 'out.wasm')],
        {
          stdio: 'ignore',
        },
      );
      expect(readFileSync(join(dir, 'out.wasm')).toString('base64')).toBe(jsonCopyTextWasm);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
