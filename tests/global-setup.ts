/**
 * Vitest global setup: starts ONE Temporal dev server, ONE embedded Postgres,
 * ONE MinIO and the other stores' test parts (Azurite, fake-gcs-server, an SFTP
 * server, pyftpdlib for FTP and FTPS; tests/helpers/store-servers.ts) for the
 * whole run (in parallel, on free ports, in a fresh temp dir) and hands their
 * coordinates to test files via `inject()`.
 *
 * Env:
 *   DATABASE_URL     use this Postgres instead of starting an embedded one
 *   KEEP_TEST_DATA   keep the temp dir (path is logged) for post-mortems
 */
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import type { TestProject } from 'vitest/node';
import { migrate } from '../src/db/migrate.js';
import { type S3Endpoint, startMinio } from '../src/dev/minio.js';
import { startEmbeddedPostgres } from '../src/dev/postgres.js';
import { type DevLogger, quietBundlerLogger, toLogger } from '../src/dev/service.js';
import { startTemporalDevServer } from '../src/dev/temporal.js';
import { processAlive } from '../src/lib/process-alive.js';
import { newSecretKey } from '../src/secrets/crypto.js';
import { workflowsPath } from '../src/worker.js';
import { type StoreEndpoints, startStoreServers } from './helpers/store-servers.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** host:port of the Temporal dev server frontend. */
    temporalAddress: string;
    /** postgres:// URL of an empty (migrated) database. */
    databaseUrl: string;
    /** MinIO coordinates. */
    s3: S3Endpoint;
    /** Workflow code bundled once for the whole run. */
    workflowBundlePath: string;
    /** Azurite, fake-gcs-server, SFTP, FTP and FTPS coordinates. */
    stores: StoreEndpoints;
  }
}

type Stop = () => Promise<void>;

/** History length at which the test server suggests continue-as-new (tests/integration/history-bound.test.ts). */
export const suggestContinueAsNewAt = 120;

const log: DevLogger = toLogger((msg) => console.error(`[global-setup] ${msg}`));

const ROOT_PREFIX = 'autoloader-test-';
const OWNER_FILE = 'owner.pid';

/**
 * A run killed hard (SIGKILL, or Ctrl-C, which `vitest run` does not handle)
 * never reaches teardown; its services die with it (see spawnService) but its
 * temp dir stays. Remove such dirs whose owning process is gone. Dirs of runs
 * that are still alive, including concurrent ones, are left alone.
 */
async function removeAbandonedRoots(): Promise<void> {
  const entries = await readdir(tmpdir()).catch((err: unknown) => {
    log.warn({ err: String(err) }, 'cannot list temp dir; skipping cleanup of abandoned test dirs');
    return [] as string[];
  });
  for (const name of entries.filter((n) => n.startsWith(ROOT_PREFIX))) {
    const dir = join(tmpdir(), name);
    // No owner file: another run that is between mkdtemp and writing it, so not ours to judge.
    const owner = Number(await readFile(join(dir, OWNER_FILE), 'utf8').catch(() => 'NaN'));
    if (!Number.isInteger(owner) || processAlive(owner)) continue;
    await rm(dir, { recursive: true, force: true }).catch((err: unknown) =>
      log.warn({ dir, err: String(err) }, 'could not remove abandoned test dir'),
    );
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  await removeAbandonedRoots();
  // Every test part runs on 127.0.0.1 (the contract's address policy lets the tests allow it), and
  // stored secrets need a key: one per test run, inherited by test files and the workers they spawn.
  process.env.AUTOLOADER_ALLOW_PRIVATE_ENDPOINTS = 'true';
  process.env.AUTOLOADER_SECRET_KEY ||= newSecretKey();
  const root = await mkdtemp(join(tmpdir(), ROOT_PREFIX));
  await writeFile(join(root, OWNER_FILE), String(process.pid));
  // mkdtemp makes the dir 0700; when running as root the embedded Postgres runs
  // as the `postgres` OS user, which must be able to traverse into it.
  await chmod(root, 0o755);
  const stops: Stop[] = [];

  const teardown = async () => {
    const results = await Promise.allSettled(stops.map((stop) => stop()));
    for (const r of results)
      if (r.status === 'rejected') log.error({ err: String(r.reason) }, 'service stop failed');
    if (process.env.KEEP_TEST_DATA) log.info({ root }, 'KEEP_TEST_DATA set; leaving service data in place');
    else await rm(root, { recursive: true, force: true });
  };

  const externalDatabaseUrl = process.env.DATABASE_URL;
  const storeServers = startStoreServers(root, log).catch((err: unknown) => ({
    endpoints: undefined,
    stops: [],
    failures: [err],
  }));
  const [temporal, postgres, minio] = await Promise.allSettled([
    startTemporalDevServer({
      dataDir: join(root, 'temporal'),
      port: 0,
      log,
      // Ask for continue-as-new early (production: ~4k events), so tests exercise it on small runs.
      extraArgs: [
        '--dynamic-config-value',
        `limit.historyCount.suggestContinueAsNew=${suggestContinueAsNewAt}`,
      ],
    }),
    externalDatabaseUrl
      ? Promise.resolve({ url: externalDatabaseUrl, stop: async () => undefined })
      : startEmbeddedPostgres({
          dataDir: join(root, 'postgres'),
          port: 0,
          log,
          // Throwaway cluster: durability buys nothing here and costs test time.
          postgresFlags: ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off'],
        }),
    startMinio({ dataDir: join(root, 'minio'), port: 0, log }),
  ]);
  for (const started of [temporal, postgres, minio])
    if (started.status === 'fulfilled') stops.push(started.value.stop);

  const failures: unknown[] = [];
  if (temporal.status === 'rejected') failures.push(temporal.reason);
  if (postgres.status === 'rejected') failures.push(postgres.reason);
  // MinIO is required everywhere, not only in CI: a suite that quietly skips its S3 tests proves nothing.
  if (minio.status === 'rejected') failures.push(minio.reason);
  // So is every other store's test part, for the same reason.
  const stores = await storeServers;
  stops.push(...stores.stops);
  failures.push(...stores.failures);

  if (
    failures.length > 0 ||
    temporal.status === 'rejected' ||
    postgres.status === 'rejected' ||
    minio.status === 'rejected' ||
    !stores.endpoints
  ) {
    await teardown();
    const messages = failures.map((f) => (f instanceof Error ? f.message : String(f)));
    throw new Error(`global setup: ${failures.length} service(s) failed to start:\n${messages.join('\n\n')}`);
  }

  const databaseUrl = postgres.value.url;
  const { endpoint, accessKey, secretKey, region } = minio.value;
  const s3: S3Endpoint = { endpoint, accessKey, secretKey, region };
  // Migrations once, and the workflow bundle once: every test file's worker loads the same bundle
  // instead of running webpack again.
  const [, bundle] = await Promise.all([
    migrate(databaseUrl),
    bundleWorkflowCode({ workflowsPath, logger: quietBundlerLogger(log) }),
  ]);
  const workflowBundlePath = join(root, 'workflow-bundle.js');
  await writeFile(workflowBundlePath, bundle.code);

  project.provide('temporalAddress', temporal.value.address);
  project.provide('databaseUrl', databaseUrl);
  project.provide('s3', s3);
  project.provide('workflowBundlePath', workflowBundlePath);
  project.provide('stores', stores.endpoints);
  log.info(
    { temporalAddress: temporal.value.address, databaseUrl, s3: s3.endpoint, root },
    'test services ready',
  );

  return teardown;
}
