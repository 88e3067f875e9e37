/**
 * Deterministic benchmark rows: every field is a function of the row id, so the JSON lines the run
 * loads and the CSV that `\copy` loads hold exactly the same values, and two bench runs load the
 * same bytes.
 */
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';

const events = ['view', 'click', 'add_to_cart', 'purchase', 'signup', 'logout'] as const;
const oses = ['ios', 'android', 'web', 'windows', 'macos'] as const;
const countries = ['DE', 'FR', 'US', 'BR', 'JP', 'IN', 'NG', 'AU'] as const;
const cities = ['Berlin', 'Paris', 'Austin', 'Recife', 'Osaka', 'Pune', 'Lagos', 'Perth'] as const;
const tagWords = ['mobile', 'promo', 'returning', 'beta', 'news', 'vip'] as const;
const baseMs = Date.UTC(2025, 0, 1);

/** A 32-bit integer hash (lowbias32): cheap, stateless, well spread — ids 1, 2, 3 look unrelated. */
function hash(x: number, salt: number): number {
  let h = (x ^ Math.imul(salt, 0x9e3779b9)) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b);
  h ^= h >>> 16;
  return h >>> 0;
}

function pick<T>(list: readonly T[], h: number): T {
  return list[h % list.length]!;
}

interface Fields {
  id: number;
  userId: number;
  event: string;
  /** Two decimals always, so `amount` is inferred as numeric and both loads store the same scale. */
  amount: string;
  ts: string;
  tagsJson: string;
  payloadJson: string;
}

function fields(id: number): Fields {
  const h1 = hash(id, 1);
  const h2 = hash(id, 2);
  const h3 = hash(id, 3);
  const cents = h1 % 100_000;
  const tagCount = 1 + (h2 % 2);
  const tags: string[] = [];
  for (let i = 0; i < tagCount; i++) tags.push(`"${tagWords[(h2 >>> (4 + i * 3)) % tagWords.length]}"`);
  const country = h3 % countries.length;
  const payloadJson =
    `{"device":{"os":"${pick(oses, h3 >>> 4)}","ver":"${(h3 >>> 8) % 20}.${(h3 >>> 13) % 10}"},` +
    `"geo":{"cc":"${countries[country]}","city":"${cities[country]}"},` +
    `"items":${1 + ((h1 >>> 17) % 9)},"ref":"cmp_${(h2 >>> 13) % 500}"}`;
  return {
    id,
    userId: 1 + (h1 % 250_000),
    event: pick(events, h2 >>> 20),
    amount: `${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, '0')}`,
    ts: new Date(baseMs + id * 1_000 + (h3 % 1_000)).toISOString(),
    tagsJson: `[${tags.join(',')}]`,
    payloadJson,
  };
}

/** The columns in the order both the JSON keys and the CSV fields use. */
export const columns = ['id', 'user_id', 'event', 'amount', 'ts', 'tags', 'payload'] as const;

export function jsonLine(id: number): string {
  const f = fields(id);
  return `{"id":${f.id},"user_id":${f.userId},"event":"${f.event}","amount":${f.amount},"ts":"${f.ts}","tags":${f.tagsJson},"payload":${f.payloadJson}}\n`;
}

const csvQuote = (s: string) => `"${s.replaceAll('"', '""')}"`;

export function csvLine(id: number): string {
  const f = fields(id);
  return `${f.id},${f.userId},${f.event},${f.amount},${f.ts},${csvQuote(f.tagsJson)},${csvQuote(f.payloadJson)}\n`;
}

/** Rows `first` … `first + count - 1` as JSON lines, in memory (small objects). */
export function jsonLines(first: number, count: number): Buffer {
  let text = '';
  for (let id = first; id < first + count; id++) text += jsonLine(id);
  return Buffer.from(text);
}

export interface RowRange {
  first: number;
  count: number;
}

/** Splits `total` rows starting at id 1 into `parts` contiguous ranges (the last ones may be one row shorter). */
export function splitRows(total: number, parts: number): RowRange[] {
  const ranges: RowRange[] = [];
  let first = 1;
  for (let i = 0; i < parts; i++) {
    const count = Math.floor(total / parts) + (i < total % parts ? 1 : 0);
    ranges.push({ first, count });
    first += count;
  }
  return ranges.filter((r) => r.count > 0);
}

/** Writes rows to a file in ~1 MB chunks, honouring back-pressure. Returns the bytes written. */
export async function writeRows(
  path: string,
  range: RowRange,
  line: (id: number) => string,
  append = false,
): Promise<number> {
  const out = createWriteStream(path, { flags: append ? 'a' : 'w' });
  let bytes = 0;
  let chunk = '';
  const end = range.first + range.count;
  for (let id = range.first; id < end; id++) {
    chunk += line(id);
    if (chunk.length >= 1 << 20 || id === end - 1) {
      bytes += Buffer.byteLength(chunk);
      if (!out.write(chunk)) await once(out, 'drain');
      chunk = '';
    }
  }
  out.end();
  await once(out, 'finish');
  return bytes;
}
