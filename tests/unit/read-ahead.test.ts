import { describe, expect, it } from 'vitest';
import { readAhead } from '../../src/lib/read-ahead.js';

/** A source of pages 1..n that records how many it has been asked for, and whether it was closed. */
function pages(n: number, failAt?: number) {
  const state = { requested: 0, closed: false };
  async function* gen() {
    try {
      for (let i = 1; i <= n; i++) {
        state.requested = i;
        await Promise.resolve();
        if (i === failAt) throw new Error(`page ${i} failed`);
        yield i;
      }
    } finally {
      state.closed = true;
    }
  }
  return { state, source: gen() };
}

/** Lets the microtasks of a pending fetch run, so the source reaches its next `yield`. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('readAhead', () => {
  it('yields every item in order', async () => {
    const out: number[] = [];
    for await (const p of readAhead(pages(5).source)) out.push(p);
    expect(out).toEqual([1, 2, 3, 4, 5]);
  });

  it('fetches the next item while the caller works on this one, and no further', async () => {
    const { state, source } = pages(4);
    const seen: [number, number][] = [];
    for await (const p of readAhead(source)) {
      await settle();
      seen.push([p, state.requested]);
    }
    expect(seen).toEqual([
      [1, 2],
      [2, 3],
      [3, 4],
      [4, 4],
    ]);
  });

  it('raises the error of the item fetched ahead when the caller reaches it', async () => {
    const { source } = pages(4, 3);
    const out: number[] = [];
    await expect(
      (async () => {
        for await (const p of readAhead(source)) {
          await settle();
          out.push(p);
        }
      })(),
    ).rejects.toThrow('page 3 failed');
    expect(out).toEqual([1, 2]);
  });

  it('closes the source when the caller stops early', async () => {
    const { state, source } = pages(10);
    for await (const p of readAhead(source)) if (p === 2) break;
    expect(state.closed).toBe(true);
    expect(state.requested).toBe(3);
  });
});
