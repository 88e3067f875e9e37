/**
 * The bench's own Temporal dev server, Postgres and MinIO, started with the project's launchers on
 * free ports under one temp dir, so a bench never touches a developer's `.autoloader` data.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { migrate } from '../src/db/migrate.js';
import { type S3Endpoint, startMinio } from '../src/dev/minio.js';
import { startEmbeddedPostgres } from '../src/dev/postgres.js';
import { type DevLogger, quietBundlerLogger, toLogger } from '../src/dev/service.js';
import { startTemporalDevServer } from '../src/dev/temporal.js';
import { workflowsPath } from '../src/worker.js';

/**
 * Durable defaults (fsync, synchronous_commit and full_page_writes stay on, as in production) plus
 * the sizing a real deployment on this machine would use: a bigger WAL budget so that loading a
 * few GB does not force a checkpoint every 1 GB, and shared buffers at ~2 % of RAM rather than
 * 128 MB. pg_stat_statements is what the bench reads its per-statement profile from; production
 * clusters commonly preload it too, and its cost is per statement (small next to a COPY).
 * fsync stays on for \copy too, so both sides of every ratio pay the same commit costs.
 */
export const postgresFlags = [
  '-c',
  'max_wal_size=4GB',
  '-c',
  'shared_buffers=512MB',
  '-c',
  'shared_preload_libraries=pg_stat_statements',
  '-c',
  'pg_stat_statements.track_utility=on',
  // Statements that name the per-file temp table get a new entry per file (the table's OID is part
  // of the query id): room for 10,000 files' worth, so the small-file profile is not truncated.
  '-c',
  'pg_stat_statements.max=50000',
];

export interface Services {
  databaseUrl: string;
  temporalAddress: string;
  s3: S3Endpoint;
  workflowBundlePath: string;
  stop(): Promise<void>;
}

export const log: DevLogger = toLogger((msg) => process.stderr.write(`[services] ${msg}\n`));

export async function startServices(root: string): Promise<Services> {
  const stops: (() => Promise<void>)[] = [];
  const stop = async () => {
    const results = await Promise.allSettled(stops.map((s) => s()));
    for (const r of results)
      if (r.status === 'rejected') log.error({ err: String(r.reason) }, 'service stop failed');
  };
  const [temporal, postgres, minio] = await Promise.allSettled([
    startTemporalDevServer({ dataDir: join(root, 'temporal'), port: 0, log }),
    startEmbeddedPostgres({ dataDir: join(root, 'postgres'), port: 0, log, postgresFlags }),
    startMinio({ dataDir: join(root, 'minio'), port: 0, log }),
  ]);
  for (const started of [temporal, postgres, minio])
    if (started.status === 'fulfilled') stops.push(started.value.stop);
  if (temporal.status === 'rejected' || postgres.status === 'rejected' || minio.status === 'rejected') {
    await stop();
    const reasons = [temporal, postgres, minio]
      .filter((s): s is PromiseRejectedResult => s.status === 'rejected')
      .map((s) => (s.reason instanceof Error ? s.reason.message : String(s.reason)));
    throw new Error(`bench services failed to start:\n${reasons.join('\n\n')}`);
  }
  try {
    // The worker child loads a pre-built bundle, so webpack's one-off memory at start-up does not
    // count as the worker's peak RSS during loads.
    const [, bundle] = await Promise.all([
      migrate(postgres.value.url),
      bundleWorkflowCode({ workflowsPath, logger: quietBundlerLogger(log) }),
    ]);
    const workflowBundlePath = join(root, 'workflow-bundle.js');
    await writeFile(workflowBundlePath, bundle.code);
    const { endpoint, accessKey, secretKey, region } = minio.value;
    return {
      databaseUrl: postgres.value.url,
      temporalAddress: temporal.value.address,
      s3: { endpoint, accessKey, secretKey, region },
      workflowBundlePath,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
