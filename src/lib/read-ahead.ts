/**
 * Iterates `source` one item ahead: while the caller works on an item, the next one is already being
 * fetched. For a listing, the next page's request is in flight while this page is merged into the
 * ledger, so a run takes about as long as the slower of the two instead of their sum. At most one
 * item is held beyond the caller's; an error of the item fetched ahead surfaces when the caller
 * reaches it, and a caller that stops early closes the source.
 */
export async function* readAhead<T>(source: AsyncIterable<T>): AsyncGenerator<T, void, undefined> {
  const it = source[Symbol.asyncIterator]();
  let next = it.next();
  let finished = false;
  try {
    for (;;) {
      const step = await next;
      if (step.done) {
        finished = true;
        return;
      }
      next = it.next();
      // Awaited on the next turn; until then a rejection is not "unhandled", and if the caller stops
      // first it is dropped with the item (the caller has already stopped for its own reason).
      next.catch(() => undefined);
      yield step.value;
    }
  } finally {
    if (!finished) {
      await next.catch(() => undefined);
      await it.return?.();
    }
  }
}
