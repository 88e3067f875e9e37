import { describe, expect, it } from 'vitest';
import {
  copyTextValue,
  type FieldKind,
  jsonLinesAsCopyText,
  NeedsStaging,
  type TextCopyColumns,
} from '../../src/load/json-copy-text.js';

/** Columns a, b, c (scalar) and j (jsonb), in that COPY order. */
const columns: TextCopyColumns = {
  byKey: new Map([
    ['a', 0],
    ['b', 1],
    ['c', 2],
    ['j', 3],
  ]),
  kinds: ['scalar', 'scalar', 'scalar', 'jsonb'] satisfies FieldKind[],
};
const suffix = Buffer.from('\tF');

async function convert(input: string | Buffer[], cols = columns) {
  const chunks = typeof input === 'string' ? [Buffer.from(input)] : input;
  const count = { records: 0 };
  const out: Buffer[] = [];
  for await (const b of jsonLinesAsCopyText(chunks, cols, suffix, count)) out.push(Buffer.from(b));
  return { text: Buffer.concat(out).toString('utf8'), records: count.records };
}

async function refusal(input: string): Promise<string> {
  try {
    await convert(input);
  } catch (err) {
    if (err instanceof NeedsStaging) return err.message;
    throw err;
  }
  throw new Error(`converted: ${input}`);
}

describe('JSON lines as COPY text rows', () => {
  it('puts each key in its column, in column order, absent keys as NULL, with the suffix', async () => {
    const { text, records } = await convert('{"c": "x", "a": 1}\n{"b": true, "j": {"k": [1, "v"]}}\n');
    expect(text).toBe('1\t\\N\tx\t\\N\tF\n\\N\ttrue\t\\N\t{"k": [1, "v"]}\tF\n');
    expect(records).toBe(2);
  });

  it('gives what ->> gives for scalars and what -> gives for jsonb, null included', async () => {
    const { text } = await convert(
      '{"a": null, "b": "say \\"hi\\"\\n\\u00e9\\ud83d\\ude00", "c": -12.50, "j": null}\n',
    );
    expect(text).toBe('\\N\tsay "hi"\\né😀\t-12.50\tnull\tF\n');
    // A string for a jsonb column stays JSON text; COPY's escapes apply to its backslashes.
    expect((await convert('{"j": "a\\tb"}\n')).text).toBe('\\N\t\\N\t\\N\t"a\\\\tb"\tF\n');
  });

  it('skips blank lines, a byte-order mark and CR line ends, and counts only records', async () => {
    const { text, records } = await convert('\uFEFF{"a": 1}\r\n\r\n   \n{"a": 2}');
    expect(text).toBe('1\t\\N\t\\N\t\\N\tF\n2\t\\N\t\\N\t\\N\tF\n');
    expect(records).toBe(2);
  });

  it('finds each key whatever order the line before had, a key that begins another included', async () => {
    // Each line's keys are compared in place with the previous line's at the same position first.
    const cols: TextCopyColumns = {
      byKey: new Map([
        ['a', 0],
        ['ab', 1],
        ['abc', 2],
      ]),
      kinds: ['scalar', 'scalar', 'scalar'],
    };
    const { text } = await convert(
      '{"a": 1, "ab": 2, "abc": 3}\n{"abc": 4, "a": 5, "ab": 6}\n{"ab": 7}\n{"a": 8, "abc": 9}\n{"a":10,"ab":11}\n',
      cols,
    );
    expect(text).toBe('1\t2\t3\tF\n5\t6\t4\tF\n\\N\t7\t\\N\tF\n8\t\\N\t9\tF\n10\t11\t\\N\tF\n');
    // A key that matches the one before it in place but goes on is another key, here an unknown one.
    expect(await refusal('{"a": 0}\n{"ax": 1}\n')).toBe('line 2: a key the table has no column for');
  });

  it('reads the same rows however the input is cut into chunks', async () => {
    const input = Buffer.from('{"a": 1, "j": {"x": "\\t"}}\n{"b": "é"}\n\n{"c": "z"}\n');
    const whole = await convert([input]);
    for (let cut = 1; cut < input.length; cut++) {
      expect(await convert([input.subarray(0, cut), input.subarray(cut)])).toEqual(whole);
    }
    const bytes = [...input].map((b) => Buffer.from([b]));
    expect(await convert(bytes)).toEqual(whole);
  });

  it.each([
    ['{"a": 1, "zz": 2}', 'a key the table has no column for'],
    ['{"a": 1, "a": 2}', 'a key twice'],
    ['{"a": 1E3}', 'a number with an exponent'],
    ['{"a": -0.0}', 'a negative zero'],
    ['{"a": 012}', 'a number with a leading zero'],
    ['{"a": {"x": 1}}', 'an object or array for a column that is not jsonb'],
    ['{"a": "\\u0000"}', 'a string escape jsonb does not accept'],
    ['{"a": "\\ud800"}', 'a string escape jsonb does not accept'],
    ['{"a": "\\x"}', 'a string with an invalid escape'],
    ['{"a": "tab\there"}', 'a control character inside a string'],
    ['[1, 2]', 'not a JSON object'],
    ['{"a": 1} x', 'text after the object'],
    ['{"a": tru}', 'not a JSON value'],
    ['{"a": "open', 'an unterminated string'],
    ['{"\\u0061": 1}', 'a key with an escape'],
    ['{"a" 1}', 'a key without a value'],
  ])('leaves %s to the staged path (%s), naming its line', async (line, reason) => {
    expect(await refusal(`{"a": 0}\n${line}\n`)).toBe(`line 2: ${reason}`);
  });

  it('escapes COPY text specials in values decoded here', () => {
    expect(copyTextValue('a\\b\tc\nd\re').toString()).toBe('a\\\\b\\tc\\nd\\re');
  });
});
