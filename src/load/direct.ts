import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import postgres from 'postgres';
import { byLineageIndex, deleteRowsOfFile } from '../destination/table.js';
import { copiedLineageColumns, systemColumns } from '../domain/lineage.js';
import { makeScratchDir } from '../lib/scratch.js';
import { NotCompleted, ReconciliationError } from './common.js';
import { copyFrom } from './copy.js';
import type { RecordCount } from './copy-input.js';
import { copyTextValue, jsonLinesAsCopyText, NeedsStaging, type TextCopyColumns } from './json-copy-text.js';
import type { LoadFileInput, LoadFileResult } from './load-types.js';
import { qualified, quoteIdent } from './sql-text.js';
import type { Head } from './stage.js';

/**
 * The direct path for a large JSON-lines file whose table already has a column for every key: one
 * COPY into the destination's typed columns (see json-copy-text.ts), in a savepoint, with the same
 * lock, DELETE of the file's earlier rows, record count check and completion statement as the
 * staged path. A file that turns out to need the staged path (a new key, a value a column refuses,
 * anything json-copy-text.ts leaves to jsonb) rolls the savepoint back and is loaded the staged way
 * from a local copy of what was read: the source is read once either way.
 */

/** The records the completion statement counts, set by the direct path for its transaction. */
const recordsSetting = 'autoloader.file_records';

export type DirectOutcome =
  | { kind: 'loaded'; result: LoadFileResult }
  /**
   * Not loaded: `head` reads the whole file again, from its start, for the staged path; `cleanup`
   * removes the local copy it reads from, once the load is over.
   */
  | { kind: 'staged'; reason: string; head: () => Promise<Head>; cleanup: () => Promise<void> };

const nothingToClean = async () => undefined;

/**
 * The local copy the staged path would re-read is bounded: past this many bytes the direct path
 * stops keeping it, and a file that then needs the staged path fails this attempt (a transient
 * error: the load is retried) and is remembered here, so its next attempt in this process goes
 * staged from the start.
 */
export const spillMaxBytes = 1024 * 1024 * 1024;
/** The local copy is written this many bytes at a time. */
const spillBatchBytes = 1024 * 1024;
const stagedOnly = new Set<string>();
const stagedOnlyMax = 10_000;
const stagedOnlyKey = (input: LoadFileInput) =>
  `${input.target.schema}.${input.target.table}\u0000${input.sourceUri}\u0000${input.runId}`;

/** The direct path gave up on a file past spillMaxBytes; the next attempt loads it staged. */
export class DirectCopyGaveUp extends Error {
  override name = 'DirectCopyGaveUp';
}

/** Errors that say the file's content needs the staged path; anything else (a lost connection, a cancel) is rethrown. */
function needsStaging(err: unknown): string | undefined {
  if (err instanceof NeedsStaging) return err.message;
  if (err instanceof postgres.PostgresError && /^(22|23|54)/.test(err.code)) return err.message;
  return undefined;
}

/** The columns a JSON key can be loaded into directly: the table's own, not the service's. */
export function directColumns(columns: Map<string, string>): TextCopyColumns & { names: string[] } {
  const names: string[] = [];
  const byKey = new Map<string, number>();
  const kinds: TextCopyColumns['kinds'] = [];
  for (const [name, type] of columns) {
    if (systemColumns.has(name)) continue;
    byKey.set(name, names.length);
    names.push(name);
    kinds.push(type === 'jsonb' ? 'jsonb' : 'scalar');
  }
  return { names, byKey, kinds };
}

/** The columns a direct COPY names: the table's own (`names`), then the lineage it sends per row. */
export function directCopyColumnList(names: string[]): string {
  return [...names, ...copiedLineageColumns].map(quoteIdent).join(', ');
}

/** A row's lineage values, in `copiedLineageColumns`' order, as COPY text each after a tab. */
export function lineageCopySuffix(sourceUri: string, runId: string): Buffer {
  return Buffer.concat([sourceUri, runId].flatMap((v) => [Buffer.from('\t'), copyTextValue(v)]));
}

export async function loadDirect(
  tx: postgres.TransactionSql,
  input: LoadFileInput & Required<Pick<LoadFileInput, 'complete' | 'lockFile'>>,
  head: Head,
  columns: Map<string, string>,
  bytesSoFar: () => number,
  readHead: (stream: Readable) => Promise<Head>,
): Promise<DirectOutcome> {
  const plan = directColumns(columns);
  if (plan.names.length === 0)
    return { kind: 'staged', reason: 'no columns yet', head: async () => head, cleanup: nothingToClean };
  if (stagedOnly.delete(stagedOnlyKey(input)))
    return {
      kind: 'staged',
      reason: 'an earlier attempt found it needs the staged path',
      head: async () => head,
      cleanup: nothingToClean,
    };
  // The first megabyte decides most files (a new key is usually on every line): nothing is copied
  // for a file that fails here, and its staged load reads the same stream from the start.
  const suffix = lineageCopySuffix(input.sourceUri, input.runId);
  const headLines = head.bytes.subarray(0, head.bytes.lastIndexOf(10) + 1);
  try {
    for await (const _ of jsonLinesAsCopyText([headLines], plan, suffix, { records: 0 })) {
      // converted and dropped: only whether it converts matters here
    }
  } catch (err) {
    if (err instanceof NeedsStaging)
      return { kind: 'staged', reason: err.message, head: async () => head, cleanup: nothingToClean };
    throw err;
  }

  const dir = await makeScratchDir('direct');
  const spillPath = join(dir, 'lines');
  const spill = createWriteStream(spillPath, { highWaterMark: 4 * spillBatchBytes });
  // Corked: a store's body arrives in chunks of 16–64 KiB, and each write would be a trip to the
  // thread pool of its own; the chunks go out spillBatchBytes at a time, in one writev.
  spill.cork();
  let corked = 0;
  let spilled = 0;
  let spilling = true;
  const spillError = once(spill, 'error').then(([err]) => {
    throw err;
  });
  spillError.catch(() => undefined);
  const source = head.stream()[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let sourceDone = false;
  /** The file's lines, each chunk kept in the spill file before COPY gets it. */
  async function* teed(): AsyncGenerator<Buffer> {
    for (;;) {
      const next = await source.next();
      if (next.done) {
        sourceDone = true;
        return;
      }
      if (spilling) {
        spilled += next.value.length;
        if (spilled > (input.directSpillMaxBytes ?? spillMaxBytes)) {
          spilling = false;
          spill.destroy();
        } else {
          spill.write(next.value);
          corked += next.value.length;
          if (corked >= spillBatchBytes) {
            spill.uncork();
            corked = 0;
            if (spill.writableNeedDrain) await Promise.race([once(spill, 'drain'), spillError]);
            spill.cork();
          }
        }
      }
      yield next.value;
    }
  }
  const cleanup = async () => {
    spill.destroy();
    await rm(dir, { recursive: true, force: true });
  };

  const count: RecordCount = { records: 0 };
  const table = qualified(input.target.schema, input.target.table);
  try {
    const result = await tx.savepoint(async (sp) => {
      // The lock first (a concurrent attempt at the file waits for this one), then the file's
      // earlier rows go, then its rows arrive.
      await input.lockFile(sp);
      await Promise.all(byLineageIndex(sp, deleteRowsOfFile(sp, input.target, input.sourceUri)));
      // The rows the table took, by COPY's own count (a BEFORE trigger's suppressed rows are not
      // in it): the file's earlier rows are gone, so these are all of the file's rows.
      const { rows: n } = await copyFrom(
        sp,
        `COPY ${table} (${directCopyColumnList(plan.names)}) FROM STDIN`,
        Readable.from(jsonLinesAsCopyText(teed(), plan, suffix, count), { objectMode: false }),
      );
      if (n !== count.records) throw new ReconciliationError(count.records, n);
      await sp`select set_config(${recordsSetting}, ${String(n)}, true)`;
      const completion = await input.complete(
        {
          columns,
          bytesRead: bytesSoFar(),
          recordsSql: `current_setting('${recordsSetting}')::bigint`,
          sourceNames: new Map(),
          rowsRejected: 0,
        },
        sp,
      );
      const completed = await completion.statement;
      // Another attempt committed this version of the file first: nothing of this one stays.
      if (completed.count === 0) throw new NotCompleted();
      return n;
    });
    await cleanup();
    return {
      kind: 'loaded',
      result: {
        records: result,
        rowsRejected: 0,
        bytesRead: bytesSoFar(),
        columnsAdded: [],
        columns,
        path: 'direct',
      },
    };
  } catch (err) {
    const reason = needsStaging(err);
    if (reason === undefined) {
      await cleanup();
      throw err;
    }
    if (!spilling) {
      await cleanup();
      if (stagedOnly.size >= stagedOnlyMax) stagedOnly.clear();
      stagedOnly.add(stagedOnlyKey(input));
      throw new DirectCopyGaveUp(
        `${reason}; past ${input.directSpillMaxBytes ?? spillMaxBytes} bytes the direct path keeps no copy to load from again, so this attempt stops and the next loads the file through staging`,
      );
    }
    return {
      kind: 'staged',
      reason,
      cleanup,
      head: async () => {
        // The rest of the file goes to the spill too; the staged path reads it all from there.
        try {
          // Uncorked first: a corked stream never drains.
          spill.uncork();
          if (!sourceDone)
            for (;;) {
              const next = await source.next();
              if (next.done) break;
              if (!spill.write(next.value)) await Promise.race([once(spill, 'drain'), spillError]);
            }
          spill.end();
          await Promise.race([once(spill, 'finish'), spillError]);
        } catch (e) {
          await cleanup();
          throw e;
        }
        return readHead(createReadStream(spillPath));
      },
    };
  }
}
