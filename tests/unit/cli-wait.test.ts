import { describe, expect, it } from 'vitest';
import type { ApiClient } from '../../src/cli/client.js';
import { ApiRequestError } from '../../src/cli/errors.js';
import type { ProgressReporter } from '../../src/cli/progress.js';
import type { RunJson } from '../../src/cli/types.js';
import { followRun } from '../../src/cli/wait.js';

const reporter: ProgressReporter = {
  update: () => undefined,
  note: () => undefined,
  finish: () => undefined,
};
const notFound = () =>
  new ApiRequestError(404, { error_code: 'RUN_NOT_FOUND', detail: 'Run not found' } as never);

/** An API answering GET /runs/{id} with `answers` in turn (an Error is thrown), on a fake clock. */
function fakeApi(answers: (Partial<RunJson> | Error)[]) {
  let clock = 0;
  const api: ApiClient = {
    baseUrl: 'http://test',
    request: async <T>() => {
      const next = answers.shift();
      if (!next) throw new Error('no more answers');
      if (next instanceof Error) throw next;
      return { status: 200, body: next as T };
    },
  };
  const opts = {
    now: () => clock,
    sleep: async (ms: number) => {
      clock += ms;
    },
  };
  return { api, opts };
}

describe('followRun', () => {
  it('waits for a run its operation has named but that has not recorded itself yet', async () => {
    const { api, opts } = fakeApi([
      notFound(),
      notFound(),
      { id: 'run_1', status: 'RUNNING' },
      { id: 'run_1', status: 'SUCCESS' },
    ]);
    const run = await followRun(api, 'run_1', reporter, opts);
    expect(run.status).toBe('SUCCESS');
  });

  it('gives up on a run that stays unknown, and passes other errors on at once', async () => {
    const { api, opts } = fakeApi(Array.from({ length: 100 }, notFound));
    await expect(followRun(api, 'run_x', reporter, opts)).rejects.toThrow('Run not found');
    const other = fakeApi([
      new ApiRequestError(401, { error_code: 'UNAUTHORIZED', detail: 'no token' } as never),
    ]);
    await expect(followRun(other.api, 'run_x', reporter, other.opts)).rejects.toThrow('no token');
  });
});
