import { FileDataError } from './common.js';

/**
 * What a file's bytes become on their way into COPY, and how many records we saw on our side.
 *
 * Two traps of COPY's text parsers decide this module's shape. On PostgreSQL 17 and earlier a line
 * `\.` ends CSV-mode COPY and the server discards the rest of the stream without an error; and in
 * CSV mode a stray quote byte can join lines. So JSON lines never go through a text parser at all:
 * each line is framed as one binary COPY tuple, and every byte reaches the jsonb parser. CSV must go
 * through Postgres' CSV parser (it is the CSV reader, with the user's options), so its records are
 * tracked here the way that parser reads them, and a record that is exactly `\.` is sent quoted —
 * the same value, no longer an end marker. Either way the caller compares our record count with the
 * rows COPY staged, and a file where they differ fails instead of loading short.
 */
export interface RecordCount {
  /** Records seen so far (JSON: non-blank lines; CSV: records, header included). */
  records: number;
}

const LF = 0x0a;
const CR = 0x0d;
const BACKSLASH = 0x5c;
const DOT = 0x2e;
const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

/** jsonb's input limit is about 255 MB a value; a longer line can only fail, so fail it early. */
export const maxLineBytes = 256 * 1024 * 1024;

const binaryHeader = Buffer.concat([Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1'), Buffer.alloc(8)]);
const binaryTrailer = Buffer.from([0xff, 0xff]);
/**
 * Each tuple is (line bigint, doc jsonb): field count (2 bytes), the line's length (4) and value (8),
 * the document's length (4) and jsonb's binary format version (1), then its text. A blank line is a
 * NULL document, keeping its place, so COPY's "line N" is the file's line N too.
 */
const tuplePrefix = 2 + 4 + 8 + 4 + 1;
const nullTupleBytes = 2 + 4 + 8 + 4;

function isBlank(line: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const c = line[i];
    if (c !== 0x20 && c !== 0x09 && c !== CR) return false;
  }
  return true;
}

/**
 * JSON lines as `COPY … (FORMAT binary)` input for `(line bigint, doc jsonb)`: one tuple per line (a
 * UTF-8 byte-order mark at the start and each line's trailing `\r` removed; blank lines as NULL).
 */
export async function* jsonLinesAsCopyBinary(
  source: AsyncIterable<Buffer>,
  count: RecordCount,
  /** The document as `text` (no jsonb version byte): the row error policy checks it in SQL. */
  opts: { asText?: boolean } = {},
): AsyncGenerator<Buffer> {
  const prefix = opts.asText ? tuplePrefix - 1 : tuplePrefix;
  yield binaryHeader;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let lineNo = 0;
  let first = true;

  /** Writes one line's tuple into out at pos; returns the new position. */
  const writeLine = (out: Buffer, pos: number, line: Buffer, start: number, end: number): number => {
    lineNo++;
    if (first) {
      first = false;
      if (end - start >= 3 && line.compare(BOM, 0, 3, start, start + 3) === 0) start += 3;
    }
    if (end > start && line[end - 1] === CR) end--;
    out.writeUInt16BE(2, pos);
    out.writeInt32BE(8, pos + 2);
    out.writeBigInt64BE(BigInt(lineNo), pos + 6);
    if (end === start || ((line[start] === 0x20 || line[start] === 0x09) && isBlank(line, start, end))) {
      out.writeInt32BE(-1, pos + 14);
      return pos + nullTupleBytes;
    }
    count.records++;
    const text = withoutNulEscapes(line, start, end);
    const body = text ?? line.subarray(start, end);
    out.writeInt32BE(body.length + prefix - 18, pos + 14);
    if (!opts.asText) out[pos + 18] = 1;
    body.copy(out, pos + prefix);
    return pos + prefix + body.length;
  };

  for await (const chunk of source) {
    const ends: number[] = [];
    for (let nl = chunk.indexOf(LF); nl !== -1; nl = chunk.indexOf(LF, nl + 1)) ends.push(nl);
    if (ends.length === 0) {
      pending.push(chunk);
      pendingBytes += chunk.length;
      if (pendingBytes > maxLineBytes) throw new FileDataError(`line ${lineNo + 1} is longer than 256 MiB`);
      continue;
    }
    // The line that started in earlier chunks ends in this one.
    let head: Buffer | undefined;
    if (pending.length > 0) {
      pending.push(chunk.subarray(0, ends[0]));
      head = Buffer.concat(pending);
      pending = [];
      pendingBytes = 0;
    }
    // withoutNulEscapes keeps a line's length (\u0000 and \ufffd are both six characters).
    const out = Buffer.allocUnsafe(chunk.length + (head?.length ?? 0) + tuplePrefix * ends.length);
    let pos = 0;
    let start = 0;
    for (const end of ends) {
      if (head) {
        pos = writeLine(out, pos, head, 0, head.length);
        head = undefined;
      } else {
        pos = writeLine(out, pos, chunk, start, end);
      }
      start = end + 1;
    }
    if (start < chunk.length) {
      pending.push(chunk.subarray(start));
      pendingBytes = chunk.length - start;
    }
    yield out.subarray(0, pos);
  }
  if (pendingBytes > 0) {
    const last = Buffer.concat(pending);
    const out = Buffer.allocUnsafe(last.length + tuplePrefix);
    yield out.subarray(0, writeLine(out, 0, last, 0, last.length));
  }
  yield binaryTrailer;
}

const nulEscape = Buffer.from('\\u0000');

/**
 * jsonb cannot hold the NUL character (Postgres text cannot), so a JSON string's `\u0000` would fail
 * the whole line: it becomes U+FFFD, the replacement character, instead. An escaped backslash
 * before it (`\\u0000`, the text "\u0000") is left alone. Returns the changed line, or undefined
 * when there was nothing to change (the usual case, found with one indexOf).
 */
function withoutNulEscapes(line: Buffer, start: number, end: number): Buffer | undefined {
  const at = line.indexOf(nulEscape, start);
  if (at === -1 || at >= end) return undefined;
  const text = line.toString('utf8', start, end);
  const fixed = replaceNulEscapes(text);
  return fixed === text ? undefined : Buffer.from(fixed, 'utf8');
}

const replaceNulEscapes = (text: string) => text.replace(/(?<!\\)((?:\\\\)*)\\u0000/g, '$1\\ufffd');

/** The same for JSON lines held whole as text (the small-file paths). */
export const jsonTextWithoutNulEscapes = (text: string): string =>
  text.includes('\\u0000') ? replaceNulEscapes(text) : text;

export interface CsvQuoting {
  quote: string;
  escape: string;
}

/**
 * A CSV file on its way into `COPY … (FORMAT csv)`, unchanged but for two things: a UTF-8
 * byte-order mark at the start is dropped, and a record that is exactly `\.` is sent as a quoted
 * `"\."` (the same value). Records are counted as Postgres' CSV reader finds them
 * (CopyReadLineText): a line break inside a quoted value does not end a record; the escape
 * character counts only inside quotes, and only when it differs from the quote.
 *
 * Bytes are scanned one at a time until the first record's end tells the line breaks apart; after
 * that, in the usual case (records end with LF or CRLF, escape = quote), the scan jumps from one
 * quote or line feed to the next with indexOf, which keeps it far faster than COPY itself.
 */
export async function* csvForCopy(
  source: AsyncIterable<Buffer>,
  quoting: CsvQuoting,
  count: RecordCount,
): AsyncGenerator<Buffer> {
  const quote = quoting.quote.charCodeAt(0);
  // As Postgres does: an escape equal to the quote is no escape (a doubled quote toggles twice).
  const escapeByte = quoting.escape === quoting.quote ? -1 : quoting.escape.charCodeAt(0);
  const quoted = Buffer.from([quote]);
  let inQuote = false;
  let lastWasEsc = false;
  let atRecordStart = true;
  /** The last byte consumed ended a record (or nothing was consumed yet). */
  let atBoundary = true;
  /** How records end, once the first one has: LF (or CRLF) or a lone CR. */
  let breaks: 'unknown' | 'lf' | 'cr' = 'unknown';
  let started = false;
  let carry: Buffer | undefined;

  const scan = (data: Buffer, final: boolean): { pieces: Buffer[]; rest: Buffer | undefined } => {
    const pieces: Buffer[] = [];
    const n = data.length;
    let i = 0;
    if (!started) {
      if (n < 3 && !final) return { pieces, rest: data };
      started = true;
      if (n >= 3 && data.compare(BOM, 0, 3, 0, 3) === 0) i = 3;
    }
    let from = i;
    /** At a record's start: send a bare `\.` record quoted. False: wait for more bytes. */
    const recordStart = (): boolean => {
      atRecordStart = false;
      if (data[i] !== BACKSLASH) return true;
      if (i + 2 >= n && !final) {
        atRecordStart = true;
        return false;
      }
      const next = data[i + 2];
      if (data[i + 1] === DOT && (next === LF || next === CR)) {
        pieces.push(data.subarray(from, i), quoted, data.subarray(i, i + 2), quoted);
        from = i + 2;
        i += 2;
        atBoundary = false;
      }
      return true;
    };

    // Byte by byte: before the line breaks are known, with a distinct escape, or with lone CRs.
    while (i < n && (breaks !== 'lf' || escapeByte !== -1)) {
      if (atRecordStart && !recordStart()) break;
      if (i >= n) break;
      const c = data[i]!;
      if (c === CR && !inQuote && i + 1 >= n && !final) break;
      if (inQuote && c === escapeByte) lastWasEsc = !lastWasEsc;
      if (c === quote && !lastWasEsc) inQuote = !inQuote;
      if (c !== escapeByte) lastWasEsc = false;
      i++;
      if (!inQuote && (c === LF || (c === CR && data[i] !== LF))) {
        if (breaks === 'unknown') breaks = c === LF ? 'lf' : 'cr';
        count.records++;
        atRecordStart = true;
        atBoundary = true;
      } else if (!(c === CR && !inQuote)) {
        atBoundary = false;
      }
    }

    // Records end at LF, escape = quote: jump between quotes and line feeds. (A lone CR here would
    // make Postgres refuse the file, so it needs no counting.)
    let nextQuote = -2;
    let nextLf = -2;
    while (i < n && breaks === 'lf' && escapeByte === -1) {
      if (atRecordStart && !recordStart()) break;
      if (i >= n) break;
      if (nextQuote !== -1 && nextQuote < i) nextQuote = data.indexOf(quote, i);
      if (inQuote) {
        if (nextQuote === -1) {
          i = n;
        } else {
          inQuote = false;
          i = nextQuote + 1;
        }
        atBoundary = false;
        continue;
      }
      if (nextLf !== -1 && nextLf < i) nextLf = data.indexOf(LF, i);
      if (nextLf !== -1 && (nextQuote === -1 || nextLf < nextQuote)) {
        i = nextLf + 1;
        count.records++;
        atRecordStart = true;
        atBoundary = true;
      } else if (nextQuote !== -1) {
        inQuote = true;
        i = nextQuote + 1;
        atBoundary = false;
      } else {
        i = n;
        atBoundary = false;
      }
    }
    if (i > from) pieces.push(data.subarray(from, i));
    return { pieces, rest: i < n ? data.subarray(i) : undefined };
  };

  for await (const chunk of source) {
    const data = carry ? Buffer.concat([carry, chunk]) : chunk;
    const { pieces, rest } = scan(data, false);
    carry = rest;
    for (const piece of pieces) if (piece.length > 0) yield piece;
  }
  const { pieces } = scan(carry ?? Buffer.alloc(0), true);
  for (const piece of pieces) if (piece.length > 0) yield piece;
  // A last record without a line break.
  if (!atBoundary) count.records++;
}

/** The records of JSON lines held whole, counted as jsonLinesAsCopyBinary counts them. */
export function nonBlankJsonLines(content: Buffer): number {
  let records = 0;
  let start = 0;
  const bom = content.length >= 3 && content.compare(BOM, 0, 3, 0, 3) === 0;
  if (bom) start = 3;
  while (start < content.length) {
    let end = content.indexOf(LF, start);
    if (end === -1) end = content.length;
    if (!isBlank(content, start, end)) records++;
    start = end + 1;
  }
  return records;
}
