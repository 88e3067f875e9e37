/**
 * `npm run api`: the HTTP API alone, against TEMPORAL_ADDRESS and DATABASE_URL. Run as many as
 * needed behind a load balancer; they share all state through Postgres and Temporal. SIGTERM stops
 * accepting connections and lets requests in flight finish.
 */
import { serve } from '@hono/node-server';
import { createApp } from '../api/app.js';
import { loadConfig } from '../config.js';
import { createDb } from '../db/client.js';
import { migrate } from '../db/migrate.js';
import { surviveConnectionLoss } from '../lib/connection-loss.js';
import { createLogger } from '../lib/logger.js';
import { serviceDepsFromConfig } from '../services/deps.js';
import { runStartupTasks } from '../startup.js';
import { connectClient } from '../temporal/connect.js';

async function main(): Promise<void> {
  const config = loadConfig();
  const log = createLogger(config.logLevel, 'api', config.logFormat);
  surviveConnectionLoss(log);
  const databaseUrl = config.databaseUrl;
  const temporalAddress = config.temporal.address;
  if (!databaseUrl || !temporalAddress) {
    throw new Error(
      'npm run api needs DATABASE_URL and TEMPORAL_ADDRESS (npm start runs everything embedded instead)',
    );
  }
  await migrate(databaseUrl);
  const { db, sql, close: closeDb } = createDb(databaseUrl, { max: 10, applicationName: 'autoloader-api' });
  const client = await connectClient(config.temporal, temporalAddress);
  await runStartupTasks({ sql, temporal: client, taskQueue: config.temporal.taskQueue, log });

  const app = createApp({
    ...serviceDepsFromConfig(config, { db, sql, temporal: client }),
    log,
    temporalUiUrl: config.temporal.uiUrl,
  });
  const server = serve({ fetch: app.fetch, hostname: config.api.host, port: config.api.port });
  log.info({ api: `http://${config.api.host}:${config.api.port}` }, 'api listening');

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'api stopping');
    server.close(() => {
      void Promise.allSettled([client.connection.close(), closeDb()]).then(() => process.exit(0));
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err: unknown) => {
  createLogger('error', 'api').fatal({ err }, 'api failed to start');
  process.exit(1);
});
