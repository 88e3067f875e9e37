import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

/**
 * A process with surviveConnectionLoss: an unhandled rejection of a query lost with its Postgres
 * connection is logged and the process goes on; any other unhandled rejection still ends it.
 * Each case runs in a child process (an unhandled rejection here would end vitest's worker).
 */
const run = promisify(execFile);

async function child(rejection: string): Promise<{ code: number; out: string }> {
  const script = `
    import { surviveConnectionLoss } from './src/lib/connection-loss.ts';
    import { createLogger } from './src/lib/logger.ts';
    surviveConnectionLoss(createLogger('warn', 'test', 'json'));
    Promise.reject(${rejection});
    // Unhandled rejections are dealt with once the microtasks of the turn have run: two turns later
    // the process either went on or ended.
    setImmediate(() => setImmediate(() => console.log('still running')));
  `;
  try {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script]);
    return { code: 0, out: stdout };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, out: e.stdout + e.stderr };
  }
}

describe('a rejection nobody handled', () => {
  it('of a query lost with its Postgres connection is logged, and the process goes on', async () => {
    const { code, out } = await child(
      "Object.assign(new Error('write CONNECTION_CLOSED 127.0.0.1:5432'), { code: 'CONNECTION_CLOSED' })",
    );
    expect(code).toBe(0);
    expect(out).toContain('had no one waiting for it');
    expect(out).toContain('still running');
  });

  it('of anything else still ends the process', async () => {
    const { code, out } = await child("new Error('a bug')");
    expect(code).not.toBe(0);
    expect(out).toContain('a bug');
    expect(out).not.toContain('still running');
  });
});
