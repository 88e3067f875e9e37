import type { RecordCount } from './copy-input.js';
import { FastLines } from './json-copy-text-fast.js';

/**
 * JSON lines straight into the destination's typed columns: each line becomes one row of
 * `COPY … (FORMAT text)` input, so Postgres types each value once, as it does for `\copy` of a CSV
 * file, instead of parsing every line into a jsonb staging table first and then casting it out.
 *
 * The rule that makes this safe: a value passes only when the text Postgres receives is exactly the
 * text the staged path would cast (`doc ->> 'key'`, or `doc -> 'key'` for a jsonb column). A line
 * where that cannot be promised without more work — a key the table has no column for, a key twice,
 * a nested value for a column that is not jsonb, a number jsonb would print otherwise (`1E3`, `-0`),
 * an escape that decodes to what Postgres refuses, or anything that is not plain JSON — ends the
 * conversion with NeedsStaging, and the caller loads the file the staged way, which handles all of
 * those (schema drift, rescue, precise errors). Values Postgres refuses end the COPY with an error,
 * with the same outcome. So this path can be slower to give up, never different in what it loads.
 *
 * Most lines are converted by a WebAssembly fast path (json-copy-text-fast.ts), which hands every
 * line it is not sure of back to convertLine below: this file's rules are the only ones.
 */

/** What a column does with a JSON value: jsonb keeps its JSON text, the others take `->>`'s text. */
export type FieldKind = 'jsonb' | 'scalar';

export interface TextCopyColumns {
  /** JSON key → the column's position in the COPY column list. */
  byKey: Map<string, number>;
  kinds: FieldKind[];
}

/** The file needs the staged path (see the module comment); `line` is where that was decided. */
export class NeedsStaging extends Error {
  override name = 'NeedsStaging';
  constructor(
    readonly line: number,
    readonly reason: string,
  ) {
    super(`line ${line}: ${reason}`);
  }
}

const TAB = 0x09;
const LF = 0x0a;
const CR = 0x0d;
const SPACE = 0x20;
const QUOTE = 0x22;
const COMMA = 0x2c;
const MINUS = 0x2d;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;
const COLON = 0x3a;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;

const NULL_FIELD = Buffer.from('\\N');
const TRUE = Buffer.from('true');
const FALSE = Buffer.from('false');
const NULL = Buffer.from('null');
/** Lines longer than this are left to the staged path (whose limit is jsonb's). */
const maxFastLineBytes = 16 * 1024 * 1024;

const maxNumberChars = 1000;
/**
 * Rows go out in pieces of about this size. Under 128 KiB, the allocation threshold the README's
 * production tuning sets (MALLOC_MMAP_THRESHOLD_=131072): a larger piece, and postgres.js' copy of
 * it into a COPY message, would each be a fresh mmap whose pages fault in on first write (measured:
 * 256 KiB pieces cost 12 % more CPU per row than 64 KiB ones with that tuning, none without).
 */
const outputChunkBytes = 64 * 1024;
/** A UTF-16 surrogate without its pair: JSON.parse keeps it, jsonb refuses it. */
const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** What a byte is to the scanners below, looked up in one of the two tables that follow. */
const Ordinary = 0;
const Quote = 1;
const Backslash = 2;
const Control = 3;
const Special = 4;
const Open = 5;
const Close = 6;

/** Inside a string: its end, an escape, or a control character JSON does not allow there. */
const stringByte = new Uint8Array(256);
for (let c = 0; c < SPACE; c++) stringByte[c] = Control;
stringByte[QUOTE] = Quote;
stringByte[BACKSLASH] = Backslash;

/** Inside an object or array, outside its strings: brackets, strings, and what COPY text escapes. */
const nestedByte = new Uint8Array(256);
nestedByte[QUOTE] = Quote;
nestedByte[TAB] = Special;
nestedByte[CR] = Special;
nestedByte[OPEN_BRACE] = Open;
nestedByte[OPEN_BRACKET] = Open;
nestedByte[CLOSE_BRACE] = Close;
nestedByte[CLOSE_BRACKET] = Close;

/** Token kinds of a field's value, as recorded per column while a line is scanned. */
enum Token {
  Absent = 0,
  Null = 1,
  /** A string without escapes: its bytes between the quotes are its value. */
  PlainString = 2,
  EscapedString = 3,
  Number = 4,
  Literal = 5,
  Nested = 6,
  /** An object or array holding a backslash, tab or CR, which COPY's text format must escape. */
  EscapedNested = 7,
}

/** COPY text format escapes for a value's bytes: backslash, and the tab, LF and CR bytes. */
function needsCopyEscape(c: number): boolean {
  return c === BACKSLASH || c === TAB || c === LF || c === CR;
}

/** A growable output buffer for the COPY text of a chunk of lines. */
class Out {
  buf: Buffer;
  pos = 0;
  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }
  reserve(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }
  byte(c: number): void {
    this.reserve(1);
    this.buf[this.pos++] = c;
  }
  bytes(src: Buffer, start = 0, end = src.length): void {
    const n = end - start;
    this.reserve(n);
    if (n > 64) {
      src.copy(this.buf, this.pos, start, end);
      this.pos += n;
      return;
    }
    // Most values are a few bytes: a loop beats Buffer.copy's call overhead.
    const b = this.buf;
    let p = this.pos;
    for (let i = start; i < end; i++) b[p++] = src[i]!;
    this.pos = p;
  }
  /** Bytes with COPY text escaping. */
  escaped(src: Buffer, start: number, end: number): void {
    this.reserve((end - start) * 2);
    const b = this.buf;
    let p = this.pos;
    for (let i = start; i < end; i++) {
      const c = src[i]!;
      if (needsCopyEscape(c)) {
        b[p++] = BACKSLASH;
        b[p++] = c === BACKSLASH ? BACKSLASH : c === TAB ? 0x74 : c === LF ? 0x6e : 0x72;
      } else b[p++] = c;
    }
    this.pos = p;
  }
  /** The bytes written so far, as a buffer of their own; the working buffer is kept for the next. */
  take(): Buffer {
    const out = Buffer.allocUnsafe(this.pos);
    this.buf.copy(out, 0, 0, this.pos);
    this.pos = 0;
    return out;
  }
}

/** Escapes text for COPY's text format (for values decoded in JS: the lineage, escaped strings). */
export function copyTextValue(s: string): Buffer {
  const raw = Buffer.from(s, 'utf8');
  const out = new Out(raw.length * 2 + 1);
  out.escaped(raw, 0, raw.length);
  return out.take();
}

/** How a conversion runs: `fast: false` converts every line in JS (the tests compare the two). */
export interface ConversionOptions {
  fast?: boolean;
  /** Counts the lines the fast path read. */
  stats?: { fastLines: number };
}

/**
 * Converts JSON lines to COPY text rows of `columns`, each followed by `suffix` (the lineage
 * columns' values, COPY-escaped, each preceded by a tab). Counts the records (non-blank lines) in
 * `count`. Throws NeedsStaging as soon as a line must take the staged path.
 */
export async function* jsonLinesAsCopyText(
  source: AsyncIterable<Buffer> | Iterable<Buffer>,
  columns: TextCopyColumns,
  suffix: Buffer,
  count: RecordCount,
  options: ConversionOptions = {},
): AsyncGenerator<Buffer> {
  const width = columns.kinds.length;
  const kinds = columns.kinds;
  const tokens = new Uint8Array(width);
  const starts = new Int32Array(width);
  const ends = new Int32Array(width);
  /** Column keys as latin1 strings of their UTF-8 bytes: a key is looked up without decoding it. */
  const byKeyBytes = new Map<string, number>();
  for (const [key, i] of columns.byKey) byKeyBytes.set(Buffer.from(key, 'utf8').toString('latin1'), i);
  const keyBytes: Buffer[] = [];
  for (const [key, i] of columns.byKey) keyBytes[i] = Buffer.from(key, 'utf8');
  /** The column of each key position in the previous line: lines of a file mostly repeat their order. */
  const previousOrder: number[] = [];
  /**
   * The WebAssembly fast path (json-copy-text-fast.ts), from the second line on: it converts the
   * lines it is sure of and hands every other line back to convertLine, the judge of what a line
   * becomes. previousOrder is where it starts looking for each key.
   */
  let fast: FastLines | undefined;
  /**
   * Keys that read the same in place as decoded: no quote, backslash or control byte in them. Such
   * a key's bytes followed by a quote, where a string starts, are that key's JSON string exactly.
   */
  const plainKey = keyBytes.map((k) => !k.some((c) => c === QUOTE || c === BACKSLASH || c < SPACE));
  /** The end (after its closing quote) of the string at p if it is column col's plain key, else -1. */
  const keyAt = (b: Buffer, p: number, end: number, col: number): number => {
    if (!plainKey[col]) return -1;
    const k = keyBytes[col]!;
    const close = p + 1 + k.length;
    if (close >= end || b[close] !== QUOTE) return -1;
    for (let i = 0; i < k.length; i++) if (k[i] !== b[p + 1 + i]) return -1;
    return close + 1;
  };
  /** The column whose key is at b[s, e) (the bytes between the quotes), or undefined. */
  const columnOf = (b: Buffer, s: number, e: number, position: number): number | undefined => {
    const col = byKeyBytes.get(b.toString('latin1', s, e));
    if (col !== undefined && previousOrder[position] !== col) {
      previousOrder[position] = col;
      fast?.orderChanged();
    }
    return col;
  };
  let lineNo = 0;
  let first = true;
  let carry: Buffer | undefined;
  const out = new Out(outputChunkBytes * 2);

  const fail = (reason: string): never => {
    throw new NeedsStaging(lineNo, reason);
  };

  const skipWs = (b: Buffer, p: number, end: number): number => {
    while (p < end) {
      const c = b[p]!;
      if (c !== SPACE && c !== TAB && c !== CR && c !== LF) break;
      p++;
    }
    return p;
  };

  /** The end (after the closing quote) of the string at p; whether it had escapes in `escapedOut`. */
  let escapedOut = false;
  const scanString = (b: Buffer, p: number, end: number): number => {
    escapedOut = false;
    for (let i = p + 1; i < end; i++) {
      const k = stringByte[b[i]!]!;
      if (k === Ordinary) continue;
      if (k === Quote) return i + 1;
      if (k === Backslash) {
        escapedOut = true;
        i++;
      } else fail('a control character inside a string');
    }
    return fail('an unterminated string');
  };

  const scanNumber = (b: Buffer, p: number, end: number): number => {
    let i = p;
    if (b[i] === MINUS) i++;
    const intStart = i;
    while (i < end && b[i]! >= ZERO && b[i]! <= NINE) i++;
    if (i === intStart) fail('not a JSON value');
    if (b[intStart] === ZERO && i - intStart > 1) fail('a number with a leading zero');
    if (b[i] === DOT) {
      i++;
      const fracStart = i;
      while (i < end && b[i]! >= ZERO && b[i]! <= NINE) i++;
      if (i === fracStart) fail('a number without digits after its point');
    }
    const c = b[i];
    // An exponent: jsonb prints such numbers expanded (1E3 as 1000), so ->> would not give this text.
    if (c === 0x65 || c === 0x45) fail('a number with an exponent');
    // jsonb's numeric has limits on its digits; a long number is left to it, on the staged path.
    if (i - p > maxNumberChars) fail('a very long number');
    if (b[p] === MINUS) {
      // -0 and -0.00: jsonb prints them without the sign.
      let allZero = true;
      for (let k = p + 1; k < i; k++) if (b[k] !== ZERO && b[k] !== DOT) allZero = false;
      if (allZero) fail('a negative zero');
    }
    return i;
  };

  /** The end of the object or array at p (brackets matched, strings skipped; content checked by jsonb). */
  /** Whether the nested value scanned last holds a byte COPY's text format must escape. */
  let nestedSpecial = false;
  const scanNested = (b: Buffer, p: number, end: number): number => {
    let depth = 0;
    nestedSpecial = false;
    for (let i = p; i < end; i++) {
      const k = nestedByte[b[i]!]!;
      if (k === Ordinary) continue;
      if (k === Quote) {
        i = scanString(b, i, end) - 1;
        if (escapedOut) nestedSpecial = true;
      } else if (k === Special) nestedSpecial = true;
      else if (k === Open) depth++;
      else if (--depth === 0) return i + 1;
    }
    return fail('an unterminated object or array');
  };

  const literal = (b: Buffer, p: number, end: number, word: Buffer): number => {
    if (end - p < word.length || b.compare(word, 0, word.length, p, p + word.length) !== 0)
      fail('not a JSON value');
    return p + word.length;
  };

  const convertLine = (b: Buffer, start: number, end: number): void => {
    lineNo++;
    if (first) {
      first = false;
      if (end - start >= 3 && b[start] === 0xef && b[start + 1] === 0xbb && b[start + 2] === 0xbf) start += 3;
    }
    let p = skipWs(b, start, end);
    if (p === end) return; // a blank line: no record, as in the staged path
    if (end - start > maxFastLineBytes) fail('a very long line');
    if (b[p] !== OPEN_BRACE) fail('not a JSON object');
    count.records++;
    tokens.fill(Token.Absent);
    p = skipWs(b, p + 1, end);
    if (b[p] === CLOSE_BRACE) p++;
    else {
      for (let position = 0; ; position++) {
        if (b[p] !== QUOTE) fail('a key that is not a string');
        // The previous line's key at this position is compared in place first: no scan, no lookup.
        let col = previousOrder[position];
        let keyEnd = col === undefined ? -1 : keyAt(b, p, end, col);
        if (keyEnd < 0) {
          keyEnd = scanString(b, p, end);
          if (escapedOut) fail('a key with an escape');
          col = columnOf(b, p + 1, keyEnd - 1, position);
          if (col === undefined) fail('a key the table has no column for');
        }
        if (tokens[col!] !== Token.Absent) fail('a key twice');
        p = skipWs(b, keyEnd, end);
        if (b[p] !== COLON) fail('a key without a value');
        p = skipWs(b, p + 1, end);
        const c = b[p];
        const valueStart = p;
        let token: Token = Token.Absent;
        if (c === QUOTE) {
          p = scanString(b, p, end);
          token = escapedOut ? Token.EscapedString : Token.PlainString;
        } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
          if (kinds[col!] !== 'jsonb') fail('an object or array for a column that is not jsonb');
          p = scanNested(b, p, end);
          token = nestedSpecial ? Token.EscapedNested : Token.Nested;
        } else if (c === MINUS || (c !== undefined && c >= ZERO && c <= NINE)) {
          p = scanNumber(b, p, end);
          token = Token.Number;
        } else if (c === 0x74) {
          p = literal(b, p, end, TRUE);
          token = Token.Literal;
        } else if (c === 0x66) {
          p = literal(b, p, end, FALSE);
          token = Token.Literal;
        } else if (c === 0x6e) {
          p = literal(b, p, end, NULL);
          token = Token.Null;
        } else fail('not a JSON value');
        tokens[col!] = token;
        starts[col!] = valueStart;
        ends[col!] = p;
        p = skipWs(b, p, end);
        if (b[p] === COMMA) {
          p = skipWs(b, p + 1, end);
          continue;
        }
        if (b[p] === CLOSE_BRACE) {
          p++;
          break;
        }
        fail('not a JSON object');
      }
    }
    if (skipWs(b, p, end) !== end) fail('text after the object');
    for (let i = 0; i < width; i++) {
      if (i > 0) out.byte(TAB);
      const token = tokens[i]!;
      if (token === Token.Absent || token === Token.Null) {
        // An explicit null in a jsonb column is JSON null in the staged path (doc -> 'key').
        if (token === Token.Null && kinds[i] === 'jsonb') out.bytes(NULL);
        else out.bytes(NULL_FIELD);
        continue;
      }
      const s = starts[i]!;
      const e = ends[i]!;
      if (kinds[i] === 'jsonb') {
        // The JSON text itself; jsonb's input parses (and checks) it as doc -> 'key' would hold it.
        if (token === Token.EscapedString || token === Token.EscapedNested) out.escaped(b, s, e);
        else out.bytes(b, s, e);
      } else if (token === Token.PlainString) out.bytes(b, s + 1, e - 1);
      else if (token === Token.EscapedString) out.bytes(decodedForCopy(b, s, e));
      else out.bytes(b, s, e);
    }
    out.bytes(suffix);
    out.byte(LF);
  };

  /** An escaped string as ->> gives it, COPY-escaped; or NeedsStaging for what jsonb refuses. */
  const decodedForCopy = (b: Buffer, s: number, e: number): Buffer => {
    let value: string;
    try {
      value = JSON.parse(b.toString('utf8', s, e)) as string;
    } catch {
      return fail('a string with an invalid escape');
    }
    // jsonb refuses \u0000 and unpaired surrogates; the staged path reports them properly.
    if (value.includes('\0') || loneSurrogate.test(value)) fail('a string escape jsonb does not accept');
    return copyTextValue(value);
  };

  /** The line of data at start, by convertLine; where the next line starts. */
  const convertOne = (data: Buffer, start: number): number => {
    const nl = data.indexOf(LF, start);
    convertLine(data, start, nl);
    return nl + 1;
  };

  /** Converts the whole lines of data from lineStart on; where the line after them starts. */
  const convertWholeLines = (data: Buffer, lineStart: number): number => {
    const end = data.lastIndexOf(LF) + 1;
    // The first line is convertLine's: a byte-order mark, and the key order the fast path follows.
    if (first && lineStart < end) lineStart = convertOne(data, lineStart);
    if (lineStart < end && options.fast !== false)
      fast ??= FastLines.acquire(columns.kinds, keyBytes, plainKey, suffix);
    if (!fast) {
      while (lineStart < end) lineStart = convertOne(data, lineStart);
      return lineStart;
    }
    if (lineStart < end) {
      const at = { lineNo: 0, records: 0 };
      while (lineStart < end) {
        fast.syncOrder(previousOrder);
        at.lineNo = lineNo;
        at.records = count.records;
        const next = fast.convert(data, lineStart, end, out, at);
        if (options.stats) options.stats.fastLines += at.lineNo - lineNo;
        lineNo = at.lineNo;
        count.records = at.records;
        lineStart = next < 0 ? convertOne(data, -next - 1) : next;
      }
    }
    return lineStart;
  };

  try {
    for await (const chunk of source) {
      const data = chunk;
      let lineStart = 0;
      if (carry) {
        // A line across chunks: joined alone, the rest of the chunk is read in place.
        const nl = data.indexOf(LF);
        if (nl < 0) {
          if (carry.length + data.length > maxFastLineBytes) fail('a very long line');
          carry = Buffer.concat([carry, data]);
          continue;
        }
        const line = Buffer.concat([carry, data.subarray(0, nl)]);
        carry = undefined;
        convertLine(line, 0, line.length);
        lineStart = nl + 1;
      }
      lineStart = convertWholeLines(data, lineStart);
      if (lineStart < data.length) {
        if (data.length - lineStart > maxFastLineBytes) fail('a very long line');
        carry = data.subarray(lineStart);
      }
      // Rows go out in pieces of outputChunkBytes whatever size the source's chunks are: each piece
      // is one COPY message and one trip through the streams in between.
      if (out.pos >= outputChunkBytes) yield out.take();
    }
    if (carry) convertLine(carry, 0, carry.length);
    if (out.pos > 0) yield out.take();
  } finally {
    // Its instance serves the next conversion (an abandoned one's is collected with it).
    fast?.release();
  }
}
