import { DefaultLogger, type LogLevel, Runtime } from '@temporalio/worker';

/**
 * The Temporal SDK logs every worker's state changes and every failed workflow at INFO/WARN to the
 * console by default: in a suite that fails workflows on purpose, that buries vitest's own output.
 * Each test process logs from ERROR up (TEST_TEMPORAL_LOG_LEVEL=INFO shows everything again).
 */
const level = (process.env.TEST_TEMPORAL_LOG_LEVEL ?? 'ERROR') as LogLevel;
try {
  Runtime.install({ logger: new DefaultLogger(level), shutdownSignals: [] });
} catch {
  // Installed already in this process (a file re-run in the same fork): keep the first one.
}
