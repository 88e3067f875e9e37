/**
 * Drives the real API app in-process (`app.request`), as a user would over HTTP: a tenant and token,
 * a connection, ingestions, and runs that it waits for on Temporal's word.
 */
import { type ApiDeps, createApp } from '../src/api/app.js';
import { inProcessClient } from '../src/api/in-process.js';
import type { RunJson } from '../src/api/routes/runs.js';
import { createToken, ensureTenant } from '../src/auth/tokens.js';
import type { S3Endpoint } from '../src/dev/minio.js';
import { createLogger } from '../src/lib/logger.js';
import { workflowIds } from '../src/temporal/ids.js';

/** What src/main.ts gives createApp, built from the same config; the bench supplies its own logger. */
export type BenchApiDeps = Omit<ApiDeps, 'log'>;

/**
 * The env vars the S3 connection names; the worker child is given them, and the bench tenant's
 * policy allows their prefix (the env form of credential references, as an operator would use it).
 */
export const s3CredentialEnv = {
  accessKey: 'BENCH_S3_ACCESS_KEY',
  secretKey: 'BENCH_S3_SECRET_KEY',
} as const;

export async function benchApi(deps: BenchApiDeps) {
  const app = createApp({ ...deps, log: createLogger('warn', 'bench-api') });
  await ensureTenant(deps.db, 'bench', 'Benchmark', { env_prefixes: ['BENCH_S3_'] });
  const { token } = await createToken(deps.db, { tenantId: 'bench', name: 'bench', subject: 'bench' });

  const call = inProcessClient(app, token);

  async function expect<T>(status: number, method: string, path: string, body?: unknown): Promise<T> {
    const res = await call<T>(method, path, body);
    if (res.status !== status)
      throw new Error(`${method} ${path}: expected ${status}, got ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  }

  return {
    async createS3Connection(s3: S3Endpoint): Promise<string> {
      const created = await expect<{ id: string }>(201, 'POST', '/api/v1/connections', {
        name: 'bench-minio',
        kind: 's3',
        config: {
          endpoint: s3.endpoint,
          region: s3.region,
          force_path_style: true,
          access_key_id: { env: s3CredentialEnv.accessKey },
          secret_access_key: { env: s3CredentialEnv.secretKey },
        },
      });
      return created.id;
    },

    async createIngestion(opts: {
      name: string;
      connectionId: string;
      bucket: string;
      prefix: string;
      destination: string;
    }): Promise<string> {
      const created = await expect<{ id: string }>(201, 'POST', '/api/v1/ingestions', {
        name: opts.name,
        connection_id: opts.connectionId,
        source: { bucket: opts.bucket, prefix: opts.prefix, pattern: '*.jsonl', format: 'jsonl' },
        destination: opts.destination,
      });
      return created.id;
    },

    /** POST /run, wait for the workflow to close, return the run as GET /runs/{id} shows it. */
    async runAndWait(ingestionId: string): Promise<RunJson> {
      const started = await expect<{ id: string }>(202, 'POST', `/api/v1/ingestions/${ingestionId}/run`);
      // A failed run fails its workflow, so result() throws: the bench stops with Temporal's reason.
      await deps.temporal.workflow.getHandle(workflowIds.ingestion(ingestionId)).result();
      return expect<RunJson>(200, 'GET', `/api/v1/runs/${started.id}`);
    },
  };
}

export type BenchApi = Awaited<ReturnType<typeof benchApi>>;
