// The fast path of src/load/json-copy-text.ts, in WebAssembly: it converts a line only when it is
// sure to write what the JS converter writes for it, and hands back every other line (a key that
// is not one of the table's plain keys, an escape it does not decode, anything the JS converter
// would refuse) for the JS converter to convert or refuse. So what a line becomes is always what
// the JS converter makes of it; this only makes the common lines cheaper. After a change:
// npm run build:wasm (scripts/build-wasm.ts); tests/unit/json-copy-text-fast.test.ts checks both.

const TAB: u32 = 0x09;
const LF: u32 = 0x0a;
const CR: u32 = 0x0d;
const SPACE: u32 = 0x20;
const QUOTE: u32 = 0x22;
const COMMA: u32 = 0x2c;
const MINUS: u32 = 0x2d;
const DOT: u32 = 0x2e;
const ZERO: u32 = 0x30;
const NINE: u32 = 0x39;
const COLON: u32 = 0x3a;
const BACKSLASH: u32 = 0x5c;
const OPEN_BRACE: u32 = 0x7b;
const CLOSE_BRACE: u32 = 0x7d;
const OPEN_BRACKET: u32 = 0x5b;
const CLOSE_BRACKET: u32 = 0x5d;

// Token kinds, as in the JS converter.
const Absent: u8 = 0;
const Null: u8 = 1;
const PlainString: u8 = 2;
const EscapedString: u8 = 3;
const NumberToken: u8 = 4;
const Literal: u8 = 5;
const Nested: u8 = 6;
const EscapedNested: u8 = 7;

/** A line the JS converter must take. */
const Defer: i32 = -1;
/** A blank line: no record. */
const Blank: i32 = -2;

const maxFastLineBytes: i32 = 16 * 1024 * 1024;
const maxNumberChars: i32 = 1000;

// The table's columns (set by configure): per column its kind (1: jsonb), whether its key reads the
// same in place (no quote, backslash or control byte), its key's bytes; per key position of the
// last line the JS converter read, its column (-1: none).
let width: i32 = 0;
let kindsAt: usize = 0;
let plainAt: usize = 0;
let keyStartAt: usize = 0;
let keyLengthAt: usize = 0;
let orderAt: usize = 0;
let tokensAt: usize = 0;
let startsAt: usize = 0;
let endsAt: usize = 0;
let suffixAt: usize = 0;
let suffixLength: i32 = 0;

/** After convert: the input bytes it took (whole lines), the output bytes, the lines and records. */
export let consumed: i32 = 0;
export let produced: i32 = 0;
export let lines: i32 = 0;
export let records: i32 = 0;

export function configure(
  w: i32,
  kinds: usize,
  plain: usize,
  keyStarts: usize,
  keyLengths: usize,
  order: usize,
  tokens: usize,
  starts: usize,
  ends: usize,
  suffix: usize,
  suffixLen: i32,
): void {
  width = w;
  kindsAt = kinds;
  plainAt = plain;
  keyStartAt = keyStarts;
  keyLengthAt = keyLengths;
  orderAt = order;
  tokensAt = tokens;
  startsAt = starts;
  endsAt = ends;
  suffixAt = suffix;
  suffixLength = suffixLen;
}

@inline function at(p: usize): u32 {
  return <u32>load<u8>(p);
}

@inline function skipWs(p: usize, end: usize): usize {
  while (p < end) {
    const c = at(p);
    if (c != SPACE && c != TAB && c != CR && c != LF) break;
    p++;
  }
  return p;
}

let escaped = false;

/** The end (after the closing quote) of the string at p, or 0 for one the JS converter must judge. */
function scanString(p: usize, end: usize): usize {
  escaped = false;
  const quote = i8x16.splat(<i8>QUOTE);
  const backslash = i8x16.splat(<i8>BACKSLASH);
  const space = i8x16.splat(<i8>SPACE);
  let i = p + 1;
  // 16 bytes at a time while they hold no quote, backslash or control byte. The input has 16
  // bytes of slack after its end, so the load never leaves the memory.
  while (i + 16 <= end) {
    const v = v128.load(i);
    const m = v128.or(v128.or(i8x16.eq(v, quote), i8x16.eq(v, backslash)), i8x16.lt_u(v, space));
    const bits = i8x16.bitmask(m);
    if (bits == 0) {
      i += 16;
      continue;
    }
    i += <usize>ctz<i32>(bits);
    const c = at(i);
    if (c == QUOTE) return i + 1;
    if (c == BACKSLASH) {
      escaped = true;
      i += 2;
      continue;
    }
    return 0;
  }
  for (; i < end; i++) {
    const c = at(i);
    if (c == QUOTE) return i + 1;
    if (c == BACKSLASH) {
      escaped = true;
      i++;
    } else if (c < SPACE) return 0;
  }
  return 0;
}

let special = false;

/** The end of the object or array at p (brackets matched, strings skipped), or 0. */
function scanNested(p: usize, end: usize): usize {
  let depth = 0;
  special = false;
  for (let i = p; i < end; i++) {
    const c = at(i);
    if (c == QUOTE) {
      const e = scanString(i, end);
      if (e == 0) return 0;
      if (escaped) special = true;
      i = e - 1;
    } else if (c == TAB || c == CR) special = true;
    else if (c == OPEN_BRACE || c == OPEN_BRACKET) depth++;
    else if (c == CLOSE_BRACE || c == CLOSE_BRACKET) {
      if (--depth == 0) return i + 1;
    }
  }
  return 0;
}

@inline function isDigit(c: u32): bool {
  return c >= ZERO && c <= NINE;
}

/** The end of the number at p, or 0 for one the JS converter must judge. */
function scanNumber(p: usize, end: usize): usize {
  let i = p;
  if (at(i) == MINUS) i++;
  const intStart = i;
  while (i < end && isDigit(at(i))) i++;
  if (i == intStart) return 0;
  if (at(intStart) == ZERO && i - intStart > 1) return 0;
  if (i < end && at(i) == DOT) {
    i++;
    const fracStart = i;
    while (i < end && isDigit(at(i))) i++;
    if (i == fracStart) return 0;
  }
  if (i < end) {
    const c = at(i);
    if (c == 0x65 || c == 0x45) return 0;
  }
  if (<i32>(i - p) > maxNumberChars) return 0;
  if (at(p) == MINUS) {
    let allZero = true;
    for (let k = p + 1; k < i; k++) {
      const d = at(k);
      if (d != ZERO && d != DOT) allZero = false;
    }
    if (allZero) return 0;
  }
  return i;
}

/** The end of the key of column col at p (after its closing quote), or 0. */
@inline function keyAt(p: usize, end: usize, col: i32): usize {
  if (load<u8>(plainAt + <usize>col) == 0) return 0;
  const k = <usize>load<i32>(keyStartAt + (<usize>col << 2));
  const n = <usize>load<i32>(keyLengthAt + (<usize>col << 2));
  const close = p + 1 + n;
  if (close >= end || at(close) != QUOTE) return 0;
  if (memory.compare(k, p + 1, n) != 0) return 0;
  return close + 1;
}

@inline function copy(o: usize, s: usize, e: usize): usize {
  memory.copy(o, s, e - s);
  return o + (e - s);
}

function copyEscaped(o: usize, s: usize, e: usize): usize {
  for (let i = s; i < e; i++) {
    const c = at(i);
    if (c == BACKSLASH || c == TAB || c == LF || c == CR) {
      store<u8>(o, <u8>BACKSLASH);
      store<u8>(o + 1, <u8>(c == BACKSLASH ? BACKSLASH : c == TAB ? 0x74 : c == LF ? 0x6e : 0x72));
      o += 2;
    } else {
      store<u8>(o, <u8>c);
      o++;
    }
  }
  return o;
}

/** Writes one decoded byte (below 0x80) COPY-escaped, as copyTextValue does. */
@inline function emitAscii(o: usize, c: u32): usize {
  if (c == BACKSLASH || c == TAB || c == LF || c == CR) {
    store<u8>(o, <u8>BACKSLASH);
    store<u8>(o + 1, <u8>(c == BACKSLASH ? BACKSLASH : c == TAB ? 0x74 : c == LF ? 0x6e : 0x72));
    return o + 2;
  }
  store<u8>(o, <u8>c);
  return o + 1;
}

/** The value of 4 hex digits at p, or -1. */
function hex4(p: usize): i32 {
  let v: i32 = 0;
  for (let i: usize = 0; i < 4; i++) {
    const c = at(p + i);
    let d: i32;
    if (c >= ZERO && c <= NINE) d = <i32>(c - ZERO);
    else if (c >= 0x61 && c <= 0x66) d = <i32>(c - 0x61 + 10);
    else if (c >= 0x41 && c <= 0x46) d = <i32>(c - 0x41 + 10);
    else return -1;
    v = (v << 4) | d;
  }
  return v;
}

/**
 * The string [s, e) (quotes included, escapes in it) as ->> gives it, COPY-escaped, at o: what the
 * JS converter's decodedForCopy writes. 0 for what it must judge itself: a byte above 0x7f (it
 * decodes the string as UTF-8, replacing what is not), an escape JSON does not have, \u0000, a
 * surrogate without its pair.
 */
function decodeEscaped(o: usize, s: usize, e: usize): usize {
  const last = e - 1;
  for (let i = s + 1; i < last; i++) {
    const c = at(i);
    if (c >= 0x80) return 0;
    if (c != BACKSLASH) {
      o = emitAscii(o, c);
      continue;
    }
    i++;
    const d = at(i);
    if (d == QUOTE || d == BACKSLASH || d == 0x2f) o = emitAscii(o, d);
    else if (d == 0x62) o = emitAscii(o, 0x08);
    else if (d == 0x66) o = emitAscii(o, 0x0c);
    else if (d == 0x6e) o = emitAscii(o, LF);
    else if (d == 0x72) o = emitAscii(o, CR);
    else if (d == 0x74) o = emitAscii(o, TAB);
    else if (d == 0x75) {
      if (i + 4 >= last) return 0;
      let cp = hex4(i + 1);
      if (cp <= 0) return 0;
      i += 4;
      if (cp >= 0xdc00 && cp <= 0xdfff) return 0;
      if (cp >= 0xd800 && cp <= 0xdbff) {
        // Its pair must follow as another \u escape.
        if (i + 6 >= last || at(i + 1) != BACKSLASH || at(i + 2) != 0x75) return 0;
        const low = hex4(i + 3);
        if (low < 0xdc00 || low > 0xdfff) return 0;
        cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
        i += 6;
      }
      if (cp < 0x80) o = emitAscii(o, <u32>cp);
      else if (cp < 0x800) {
        store<u8>(o, <u8>(0xc0 | (cp >> 6)));
        store<u8>(o + 1, <u8>(0x80 | (cp & 0x3f)));
        o += 2;
      } else if (cp < 0x10000) {
        store<u8>(o, <u8>(0xe0 | (cp >> 12)));
        store<u8>(o + 1, <u8>(0x80 | ((cp >> 6) & 0x3f)));
        store<u8>(o + 2, <u8>(0x80 | (cp & 0x3f)));
        o += 3;
      } else {
        store<u8>(o, <u8>(0xf0 | (cp >> 18)));
        store<u8>(o + 1, <u8>(0x80 | ((cp >> 12) & 0x3f)));
        store<u8>(o + 2, <u8>(0x80 | ((cp >> 6) & 0x3f)));
        store<u8>(o + 3, <u8>(0x80 | (cp & 0x3f)));
        o += 4;
      }
    } else return 0;
  }
  return o;
}

@inline function literal(p: usize, end: usize, word: u32, n: usize): usize {
  // word: the literal's bytes, little-endian (true, null: 4 bytes; false: its first 4, then 'e').
  if (end - p < n) return 0;
  if (load<u32>(p) != word) return 0;
  if (n == 5 && at(p + 4) != 0x65) return 0;
  return p + n;
}

/** Converts the line [b, end) to COPY text at o: the bytes written, or Defer, or Blank. */
function line(b: usize, end: usize, o: usize): i32 {
  let p = skipWs(b, end);
  if (p == end) return Blank;
  if (<i32>(end - b) > maxFastLineBytes) return Defer;
  if (at(p) != OPEN_BRACE) return Defer;
  memory.fill(tokensAt, 0, <usize>width);
  p = skipWs(p + 1, end);
  if (p < end && at(p) == CLOSE_BRACE) p++;
  else {
    let position = 0;
    let open = true;
    while (open) {
      if (p >= end || at(p) != QUOTE) return Defer;
      if (position >= width) return Defer;
      // The last line's key at this position first; then every column's (a line without some keys
      // of the one before, or in another order). The order is this module's own from here on.
      const orderSlot = orderAt + (<usize>position << 2);
      let col = load<i32>(orderSlot);
      let keyEnd: usize = col < 0 ? 0 : keyAt(p, end, col);
      if (keyEnd == 0) {
        for (col = 0; col < width; col++) {
          keyEnd = keyAt(p, end, col);
          if (keyEnd != 0) break;
        }
        // No plain key of the table: an unknown key, or one with an escape.
        if (keyEnd == 0) return Defer;
        store<i32>(orderSlot, col);
      }
      const c4 = <usize>col << 2;
      if (load<u8>(tokensAt + <usize>col) != Absent) return Defer;
      p = skipWs(keyEnd, end);
      if (p >= end || at(p) != COLON) return Defer;
      p = skipWs(p + 1, end);
      if (p >= end) return Defer;
      const c = at(p);
      const valueStart = p;
      let token: u8 = Absent;
      if (c == QUOTE) {
        p = scanString(p, end);
        if (p == 0) return Defer;
        token = escaped ? EscapedString : PlainString;
      } else if (c == OPEN_BRACE || c == OPEN_BRACKET) {
        if (load<u8>(kindsAt + <usize>col) == 0) return Defer;
        p = scanNested(p, end);
        if (p == 0) return Defer;
        token = special ? EscapedNested : Nested;
      } else if (c == MINUS || isDigit(c)) {
        p = scanNumber(p, end);
        if (p == 0) return Defer;
        token = NumberToken;
      } else if (c == 0x74) {
        p = literal(p, end, 0x65757274, 4);
        if (p == 0) return Defer;
        token = Literal;
      } else if (c == 0x66) {
        p = literal(p, end, 0x736c6166, 5);
        if (p == 0) return Defer;
        token = Literal;
      } else if (c == 0x6e) {
        p = literal(p, end, 0x6c6c756e, 4);
        if (p == 0) return Defer;
        token = Null;
      } else return Defer;
      store<u8>(tokensAt + <usize>col, token);
      store<i32>(startsAt + c4, <i32>valueStart);
      store<i32>(endsAt + c4, <i32>p);
      p = skipWs(p, end);
      if (p < end && at(p) == COMMA) {
        p = skipWs(p + 1, end);
        position++;
      } else if (p < end && at(p) == CLOSE_BRACE) {
        p++;
        open = false;
      } else return Defer;
    }
  }
  if (skipWs(p, end) != end) return Defer;
  const o0 = o;
  for (let i = 0; i < width; i++) {
    if (i > 0) {
      store<u8>(o, <u8>TAB);
      o++;
    }
    const token = load<u8>(tokensAt + <usize>i);
    const jsonb = load<u8>(kindsAt + <usize>i) != 0;
    if (token == Absent || token == Null) {
      if (token == Null && jsonb) {
        store<u32>(o, 0x6c6c756e);
        o += 4;
      } else {
        store<u16>(o, 0x4e5c);
        o += 2;
      }
      continue;
    }
    const s = <usize>load<i32>(startsAt + (<usize>i << 2));
    const e = <usize>load<i32>(endsAt + (<usize>i << 2));
    if (jsonb) {
      if (token == EscapedString || token == EscapedNested) o = copyEscaped(o, s, e);
      else o = copy(o, s, e);
    } else if (token == PlainString) o = copy(o, s + 1, e - 1);
    else if (token == EscapedString) {
      o = decodeEscaped(o, s, e);
      if (o == 0) return Defer;
    } else o = copy(o, s, e);
  }
  memory.copy(o, suffixAt, <usize>suffixLength);
  o += <usize>suffixLength;
  store<u8>(o, <u8>LF);
  o++;
  return <i32>(o - o0);
}

/** The next LF at or after p before end, or end. */
function nextLf(p: usize, end: usize): usize {
  const lf = i8x16.splat(<i8>LF);
  while (p + 16 <= end) {
    const bits = i8x16.bitmask(i8x16.eq(v128.load(p), lf));
    if (bits != 0) return p + <usize>ctz<i32>(bits);
    p += 16;
  }
  while (p < end && at(p) != LF) p++;
  return p;
}

/**
 * Converts the whole lines of [input, input + length) (each ends with LF) into out, up to outCap
 * bytes. Answers 0 when every whole line is converted, 1 when the line at `consumed` is the JS
 * converter's to take, 2 when the output is full before the line at `consumed`.
 */
export function convert(input: usize, length: i32, out: usize, outCap: i32): i32 {
  const end = input + <usize>length;
  let p = input;
  let o: i32 = 0;
  lines = 0;
  records = 0;
  let status = 0;
  while (p < end) {
    const nl = nextLf(p, end);
    if (nl == end) break;
    const need = 2 * <i32>(nl - p) + 3 * width + suffixLength + 1;
    if (o + need > outCap) {
      status = 2;
      break;
    }
    const n = line(p, nl, out + <usize>o);
    if (n == Defer) {
      status = 1;
      break;
    }
    lines++;
    if (n != Blank) {
      records++;
      o += n;
    }
    p = nl + 1;
  }
  consumed = <i32>(p - input);
  produced = o;
  return status;
}
