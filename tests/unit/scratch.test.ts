/**
 * A killed worker's scratch dirs (the direct path's spill, DuckDB's copies) are removed by the next
 * worker's start; a live process's are not. Real processes give the pids: one that has exited, and
 * one that is still running.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/lib/logger.js';
import { makeScratchDir, sweepScratch } from '../../src/lib/scratch.js';

const log = createLogger('silent', 'test', 'json');
let root: string;
let running: ChildProcess;
let deadPid: number;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'autoloader-test-scratch-'));
  const done = spawn(process.execPath, ['-e', '']);
  await once(done, 'exit');
  deadPid = done.pid!;
  running = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  await once(running, 'spawn');
});

afterAll(async () => {
  running.kill('SIGKILL');
  await rm(root, { recursive: true, force: true });
});

async function leftover(name: string): Promise<void> {
  await mkdir(join(root, name));
  await writeFile(join(root, name, 'lines'), 'x'.repeat(1024));
}

describe('sweepScratch', () => {
  it('removes the dirs of exited processes and of its own pid, keeps a live process’s and anything else', async () => {
    await leftover(`autoloader-direct-${deadPid}-AbC123`);
    await leftover(`autoloader-duckdb-${deadPid}-zz9ZZ9`);
    await leftover(`autoloader-direct-${process.pid}-qwerty`);
    await leftover(`autoloader-direct-${running.pid}-keep01`);
    await leftover(`autoloader-duckdb-${running.pid}-keep02`);
    // Not ours by name: another prefix, another kind, a suffix mkdtemp never makes, no pid.
    await leftover(`autoloader-test-${deadPid}-AbC123`);
    await leftover(`autoloader-pg-${deadPid}-AbC123`);
    await leftover(`autoloader-direct-${deadPid}-AbC12`);
    await leftover(`autoloader-direct-${deadPid}-AbC1234`);
    await leftover('autoloader-direct-x-AbC123');
    await writeFile(join(root, `autoloader-direct-${deadPid}-file01`), 'a file, not a dir');

    const removed = await sweepScratch(log, root);

    expect(removed.sort()).toEqual(
      [
        `autoloader-direct-${deadPid}-AbC123`,
        `autoloader-duckdb-${deadPid}-zz9ZZ9`,
        `autoloader-direct-${process.pid}-qwerty`,
        `autoloader-direct-${deadPid}-file01`,
      ].sort(),
    );
    expect((await readdir(root)).sort()).toEqual(
      [
        `autoloader-direct-${running.pid}-keep01`,
        `autoloader-duckdb-${running.pid}-keep02`,
        `autoloader-test-${deadPid}-AbC123`,
        `autoloader-pg-${deadPid}-AbC123`,
        `autoloader-direct-${deadPid}-AbC12`,
        `autoloader-direct-${deadPid}-AbC1234`,
        'autoloader-direct-x-AbC123',
      ].sort(),
    );
  });

  it('recognises the names makeScratchDir makes', async () => {
    const made = await makeScratchDir('direct');
    try {
      const name = made.slice(made.lastIndexOf('/') + 1);
      expect(name).toMatch(new RegExp(`^autoloader-direct-${process.pid}-`));
      // Its own pid: a dir of this process is a predecessor's at start (see sweepScratch).
      await mkdir(join(root, name));
      expect(await sweepScratch(log, root)).toEqual([name]);
    } finally {
      await rm(made, { recursive: true, force: true });
    }
  });

  it('survives a temp dir it cannot list', async () => {
    expect(await sweepScratch(log, join(root, 'no-such-dir'))).toEqual([]);
  });
});
