import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { serve } from '@hono/node-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createToken, permissions } from '../../src/auth/tokens.js';
import { pipTool, run, schemathesis } from '../../src/dev/provision.js';
import { type Harness, jsonLines, startHarness } from '../helpers/harness.js';
import { printableSummary } from '../helpers/schemathesis-output.js';

/**
 * A schema-driven fuzz of the served OpenAPI document against the app with every dependency up
 * (a real worker, Temporal, Postgres, MinIO): any 5xx, undocumented status, wrong content type or
 * body that does not match its schema is a finding. Fixed seed and bounded examples, so a failure
 * replays; the seed and the number of cases are printed.
 */
const seed = Number(process.env.FUZZ_SEED ?? 20261201);
const maxExamples = Number(process.env.FUZZ_MAX_EXAMPLES ?? 12);

let h: Harness;
let server: ReturnType<typeof serve>;
let base: string;
let st: string;

beforeAll(async () => {
  [h, st] = await Promise.all([startHarness(), pipTool(schemathesis, (m) => console.error(`[fuzz] ${m}`))]);
  // Something for the fuzzer to find: an ingestion with a run, so ids in examples can exist.
  const { id } = await h.createIngestion({ 'a.jsonl': jsonLines(0, 5) }, {}, 'fuzz');
  await h.runAndWait(id);
  server = serve({ fetch: h.app.fetch, hostname: '127.0.0.1', port: 0 });
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}, 600_000);
afterAll(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  await h?.close();
});

/** One Schemathesis run over the operations `filter` selects, with this token; returns its findings. */
async function fuzz(
  token: string,
  filter: string[],
): Promise<{ failed: boolean; output: string; cases: string }> {
  const args = [
    'run',
    `${base}/openapi.json`,
    ...filter,
    '--header',
    `Authorization: Bearer ${token}`,
    '--checks',
    'not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance',
    '--seed',
    String(seed),
    '--max-examples',
    String(maxExamples),
    // One worker: with two, Schemathesis' threads share Hypothesis' in-process caches, which are
    // not thread-safe (seen here: a KeyError inside hypothesis/internal/cache.py ended a run), and
    // a fixed seed only replays the same cases when they run in one order.
    '--workers',
    '1',
    '--phases',
    'examples,coverage,fuzzing',
    '--generation-database',
    'none',
    '--request-timeout',
    '30',
    '--no-color',
    '--continue-on-failure',
  ];
  let output: string;
  let failed = false;
  try {
    output = await run(st, args, {
      timeoutMs: 8 * 60_000,
      env: { ...process.env, SCHEMATHESIS_HOOKS: '' },
      // Schemathesis keeps its own files (.schemathesis/) in its working directory: not the project.
      cwd: tmpdir(),
    });
  } catch (err) {
    failed = true;
    output = (err as Error).message;
  }
  const cases = /(\d+) generated/.exec(output)?.[1] ?? '?';
  console.error(`[fuzz] seed ${seed}, ${cases} generated cases\n${printableSummary(output)}`);
  return { failed, output, cases };
}

describe('API fuzzing (Schemathesis)', () => {
  it(`finds no server error, undocumented status, wrong content type or schema mismatch (seed ${seed})`, async () => {
    // A tenant's token (every permission but admin) over the tenant's routes; then an operator's over
    // the admin routes, separately: an admin run may revoke its own token, which would turn every
    // later request into a 401.
    const tenantToken = await createToken(h.db, {
      tenantId: h.tenantId,
      name: 'fuzz',
      subject: 'fuzzer',
      permissions: permissions.filter((p) => p !== 'admin'),
    });
    const tenant = await fuzz(tenantToken.token, ['--exclude-path-regex', '^/api/v1/admin/']);
    expect(tenant.failed, tenant.output.slice(-6000)).toBe(false);
    expect(tenant.output).not.toMatch(/Authentication failed/);
    const admin = await fuzz(h.token, ['--include-path-regex', '^/api/v1/admin/']);
    expect(admin.failed, admin.output.slice(-6000)).toBe(false);
    console.error(`[fuzz] seed ${seed}: ${tenant.cases} + ${admin.cases} generated cases, no findings`);
  }, 600_000);
});
