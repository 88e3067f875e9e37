import { describe, expect, it } from 'vitest';
import {
  csvForCopy,
  jsonLinesAsCopyBinary,
  nonBlankJsonLines,
  type RecordCount,
} from '../../src/load/copy-input.js';

async function collect(gen: AsyncGenerator<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const p of gen) parts.push(p);
  return Buffer.concat(parts);
}

async function* chunks(data: Buffer, cuts: number[]): AsyncGenerator<Buffer> {
  let from = 0;
  for (const cut of cuts) {
    yield data.subarray(from, cut);
    from = cut;
  }
  yield data.subarray(from);
}

/** Reads COPY binary output back into its (line, doc) tuples (null for NULL), checking the framing. */
function decodeBinary(buf: Buffer): [number, string | null][] {
  expect(buf.subarray(0, 11).toString('latin1')).toBe('PGCOPY\n\xff\r\n\0');
  let pos = 19;
  const out: [number, string | null][] = [];
  for (;;) {
    const fields = buf.readInt16BE(pos);
    pos += 2;
    if (fields === -1) break;
    expect(fields).toBe(2);
    expect(buf.readInt32BE(pos)).toBe(8);
    const line = Number(buf.readBigInt64BE(pos + 4));
    pos += 12;
    const len = buf.readInt32BE(pos);
    pos += 4;
    if (len === -1) {
      out.push([line, null]);
      continue;
    }
    expect(buf[pos]).toBe(1); // jsonb format version
    out.push([line, buf.subarray(pos + 1, pos + len).toString('utf8')]);
    pos += len;
  }
  expect(pos).toBe(buf.length);
  return out;
}

describe('JSON lines as binary COPY tuples', () => {
  const text = '\uFEFF{"a":1}\r\n\\.\n\n  \n{"b":"\\\\."}\n{"c":"é"}';
  it.each([
    ['one chunk', []],
    ['cut inside the BOM and a line', [1, 5]],
    ['cut at every line break', [9, 10, 13, 14]],
  ])('frames every line as one tuple (%s)', async (_name, cuts) => {
    const count: RecordCount = { records: 0 };
    const out = await collect(jsonLinesAsCopyBinary(chunks(Buffer.from(text), cuts as number[]), count));
    expect(decodeBinary(out)).toEqual([
      [1, '{"a":1}'],
      [2, '\\.'],
      [3, null],
      [4, null],
      [5, '{"b":"\\\\."}'],
      [6, '{"c":"é"}'],
    ]);
    expect(count.records).toBe(4);
    expect(nonBlankJsonLines(Buffer.from(text))).toBe(4);
  });

  it('splits at every byte position the same way', async () => {
    const data = Buffer.from(text);
    const expected = await collect(jsonLinesAsCopyBinary(chunks(data, []), { records: 0 }));
    for (let cut = 1; cut < data.length; cut++) {
      const out = await collect(jsonLinesAsCopyBinary(chunks(data, [cut]), { records: 0 }));
      expect(out.equals(expected), `cut at ${cut}`).toBe(true);
    }
  });
});

describe('CSV on its way into COPY', () => {
  async function run(text: string, cuts: number[] = [], quoting = { quote: '"', escape: '"' }) {
    const count: RecordCount = { records: 0 };
    const out = await collect(csvForCopy(chunks(Buffer.from(text), cuts), quoting, count));
    return { out: out.toString('utf8'), records: count.records };
  }

  it('quotes a record that is exactly \\. and leaves \\. inside a value or with more text alone', async () => {
    const text = 'v\n\\.\nx,"a\n\\.\nb"\n\\.x\n\\.\r\nlast';
    const { out, records } = await run(text);
    expect(out).toBe('v\n"\\."\nx,"a\n\\.\nb"\n\\.x\n"\\."\r\nlast');
    expect(records).toBe(6);
  });

  it('counts records as Postgres reads them: quoted line breaks, CRLF, CR, escapes, a last line without a break', async () => {
    expect((await run('a,b\n1,"x\ny"\n2,z\n')).records).toBe(3);
    expect((await run('a,b\r\n1,"x\r\ny"\r\n2,z')).records).toBe(3);
    expect((await run('a\r1\r2\r')).records).toBe(3);
    expect((await run('a\n\n1\n')).records).toBe(3);
    expect((await run('')).records).toBe(0);
    // With escape \, an escaped quote does not end the value: one record, not two.
    expect((await run('a\n"x\\"\ny"\n', [], { quote: '"', escape: '\\' })).records).toBe(2);
    // With escape = quote (the default), a doubled quote inside a value is a quote.
    expect((await run('a\n"x""\ny"\n')).records).toBe(2);
  });

  it('drops a byte-order mark at the start only', async () => {
    expect((await run('\uFEFFid\n1\n')).out).toBe('id\n1\n');
    expect((await run('id\n\uFEFF1\n')).out).toBe('id\n\uFEFF1\n');
  });

  it('gives the same bytes and count wherever the chunks are cut', async () => {
    const text = '\uFEFFv,w\r\n\\.\r\n"q\r\n\\.\r\n",1\r\n\\.\r\nend\r';
    const whole = await run(text);
    const bytes = Buffer.from(text).length;
    for (let a = 1; a < bytes; a++) {
      for (const b of [a + 1, a + 2, bytes - 1]) {
        const cuts = b > a && b < bytes ? [a, b] : [a];
        const got = await run(text, cuts);
        expect(got, `cuts ${cuts.join(',')}`).toEqual(whole);
      }
    }
  });
});

/**
 * A plain transcription of Postgres' CSV record reading (CopyReadLineText), byte by byte over the
 * whole input: the reference the chunked, indexOf-jumping scanner must agree with.
 */
function referenceCsv(
  data: Buffer,
  quoteCh: string,
  escapeCh: string,
): { out: Buffer; records: number; refused: boolean } {
  const quote = quoteCh.charCodeAt(0);
  const escapeByte = escapeCh === quoteCh ? -1 : escapeCh.charCodeAt(0);
  let i = data.length >= 3 && data[0] === 0xef && data[1] === 0xbb && data[2] === 0xbf ? 3 : 0;
  const out: number[] = [];
  let records = 0;
  let inQuote = false;
  let lastWasEsc = false;
  let start = true;
  let open = false;
  // Postgres fixes the line-break style at the first record and refuses any other one after it.
  let eol: 'nl' | 'crnl' | 'cr' | undefined;
  let refused = false;
  const sawBreak = (style: 'nl' | 'crnl' | 'cr') => {
    eol ??= style;
    if (eol !== style) refused = true;
  };
  while (i < data.length) {
    if (start && data[i] === 0x5c && data[i + 1] === 0x2e && (data[i + 2] === 0x0a || data[i + 2] === 0x0d)) {
      out.push(quote, 0x5c, 0x2e, quote);
      i += 2;
      start = false;
      open = true;
      continue;
    }
    start = false;
    const c = data[i]!;
    if (inQuote && c === escapeByte) lastWasEsc = !lastWasEsc;
    if (c === quote && !lastWasEsc) inQuote = !inQuote;
    if (c !== escapeByte) lastWasEsc = false;
    out.push(c);
    i++;
    if (!inQuote && c === 0x0d && data[i] === 0x0a) sawBreak('crnl');
    else if (!inQuote && c === 0x0a && data[i - 2] !== 0x0d) sawBreak('nl');
    else if (!inQuote && c === 0x0d) sawBreak('cr');
    if (!inQuote && (c === 0x0a || (c === 0x0d && data[i] !== 0x0a))) {
      records++;
      start = true;
      open = false;
    } else if (!(c === 0x0d && !inQuote)) {
      open = true;
    }
  }
  if (open) records++;
  return { out: Buffer.from(out), records, refused };
}

/** mulberry32: a small seeded generator, so a failure can be replayed. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('CSV scanner against a byte-by-byte reference', () => {
  const seed = 20261201;
  it(`agrees on 2,000 random inputs and chunkings (seed ${seed})`, async () => {
    const rand = prng(seed);
    // Line-ending styles decide the scanner's path: LF and CRLF take the fast one.
    const alphabets = ['ab,"\n\\.', 'ab,"\r\n\\.', 'a,"\r\\.', 'a,"\\\n.x'];
    let compared = 0;
    for (let n = 0; n < 2000; n++) {
      const alphabet = alphabets[n % alphabets.length]!;
      const length = Math.floor(rand() * 60);
      let text = rand() < 0.2 ? '\uFEFF' : '';
      for (let k = 0; k < length; k++) text += alphabet[Math.floor(rand() * alphabet.length)];
      const quoting = rand() < 0.3 ? { quote: '"', escape: '\\' } : { quote: '"', escape: '"' };
      const data = Buffer.from(text);
      const cuts: number[] = [];
      for (let at = 1; at < data.length; at++) if (rand() < 0.15) cuts.push(at);
      const count: RecordCount = { records: 0 };
      const out = await collect(csvForCopy(chunks(data, cuts), quoting, count));
      const ref = referenceCsv(data, quoting.quote, quoting.escape);
      const label = `input ${JSON.stringify(text)} cuts ${cuts} escape ${quoting.escape}`;
      // A file Postgres refuses (mixed line breaks) fails whatever we count.
      if (ref.refused) continue;
      compared++;
      expect(out.toString('latin1'), label).toBe(ref.out.toString('latin1'));
      expect(count.records, label).toBe(ref.records);
    }
    expect(compared).toBeGreaterThan(1000);
  });
});
