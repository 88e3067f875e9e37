import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from './logger.js';
import { processAlive } from './process-alive.js';

/**
 * A load's scratch space in the temp dir: the direct path's spill of a file's lines, DuckDB's copy
 * of a JSON array or Parquet file. A load removes its own when it ends, however it ends; a process
 * that is killed (SIGKILL, the OOM killer, a lost machine) cannot, and each of its loads in flight
 * leaves up to a file's size behind. The name carries the process id, so that the next worker on
 * the machine can tell a dead process's leftovers from a live one's and remove them at its start.
 */
export type ScratchKind = 'direct' | 'duckdb';

const scratchName = /^autoloader-(direct|duckdb)-(\d+)-[A-Za-z0-9]{6}$/;

export function makeScratchDir(kind: ScratchKind): Promise<string> {
  return mkdtemp(join(tmpdir(), `autoloader-${kind}-${process.pid}-`));
}

/**
 * Removes the scratch dirs of processes that are gone. Call it once at a worker process's start,
 * before it loads anything: a dir with the process's own id is then a dead predecessor's (in a
 * container the worker is often pid 1 at every start), never its own.
 */
export async function sweepScratch(log: Logger, dir: string = tmpdir()): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    log.warn({ err, dir }, 'could not list the temp dir for leftovers of killed workers');
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const m = scratchName.exec(name);
    if (!m) continue;
    const pid = Number(m[2]);
    if (pid !== process.pid && processAlive(pid)) continue;
    try {
      await rm(join(dir, name), { recursive: true, force: true });
      removed.push(name);
    } catch (err) {
      log.warn({ err, path: join(dir, name) }, 'could not remove a killed worker’s scratch dir');
    }
  }
  if (removed.length > 0)
    log.info({ dir, removed: removed.length }, 'removed scratch dirs left by killed workers');
  return removed;
}
