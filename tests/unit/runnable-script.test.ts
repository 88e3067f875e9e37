import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isRunnableScript } from '../../src/dev/provision.js';

/** A venv moved to another folder keeps scripts whose `#!` names the old python: reinstall it. */
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'runnable-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function script(name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  await chmod(path, 0o755);
  return path;
}

describe('isRunnableScript', () => {
  it('a script whose interpreter exists runs', async () => {
    expect(await isRunnableScript(await script('ok', '#!/bin/sh\necho ok\n'))).toBe(true);
  });
  it('a script whose #! names a python that is gone (a moved venv) does not', async () => {
    const path = await script('moved', `#!${join(dir, 'old-venv', 'bin', 'python3')}\nprint(1)\n`);
    expect(await isRunnableScript(path)).toBe(false);
  });
  it('a missing file does not', async () => {
    expect(await isRunnableScript(join(dir, 'absent'))).toBe(false);
  });
});
