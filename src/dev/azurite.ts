/**
 * Runs Azurite's blob service (Microsoft's Azure Storage emulator) as a child process, giving tests
 * a real Azure Blob API. Azurite is installed on demand into a cache folder of its own rather than
 * into the project: its dependencies bring @types packages that break the project's build.
 */
import { existsSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  homeDir,
  type LogSink,
  resolvePort,
  runToCompletion,
  startService,
  toLogger,
  withPortRetry,
} from './service.js';

/** Pinned Azurite version (npm `azurite`); the install and the launcher both read it here. */
export const AZURITE_VERSION = '3.35.0';

/** Azurite's well-known development account (the same in every Azurite, documented by Microsoft). */
export const AZURITE_ACCOUNT = 'devstoreaccount1';
export const AZURITE_ACCOUNT_KEY =
  'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export interface AzuriteOptions {
  /** Azurite's workspace (its metadata and blob extents). */
  dataDir: string;
  /** Default 10000; 0 = any free port. */
  port?: number;
  log: LogSink;
  startupTimeoutMs?: number;
}

/** Plain data, so vitest can `provide` it to test files. */
export interface AzuriteEndpoint {
  /** http://127.0.0.1:<port>/devstoreaccount1 */
  accountUrl: string;
  accountName: string;
  accountKey: string;
}

export interface AzuriteServer extends AzuriteEndpoint {
  stop(): Promise<void>;
}

/** Where Azurite is installed: $AZURITE_DIR, or a per-version folder of the user's cache. */
export function azuriteDir(): string {
  return process.env.AZURITE_DIR ?? homeDir('.cache', 'autoloader', `azurite-${AZURITE_VERSION}`);
}

const blobMain = (dir: string) => join(dir, 'node_modules', 'azurite', 'dist', 'src', 'blob', 'main.js');

/**
 * The blob service's entry point, installed first if missing (`npm install` into a scratch folder,
 * then renamed into place, so two runs installing at once cannot leave half an install behind).
 */
export async function ensureAzurite(sink: LogSink): Promise<string> {
  const log = toLogger(sink);
  const dir = azuriteDir();
  if (existsSync(blobMain(dir))) return blobMain(dir);
  const scratch = `${dir}.installing-${process.pid}`;
  log.info({ dir }, `installing azurite@${AZURITE_VERSION} (first run only; about a minute)`);
  // Installed from inside the folder rather than with --prefix, which also moves npm's global
  // config (<prefix>/etc/npmrc) and with it settings such as the registry's CA file.
  await mkdir(scratch, { recursive: true });
  await writeFile(join(scratch, 'package.json'), '{"private": true}\n');
  const res = await runToCompletion(
    'npm',
    ['install', `azurite@${AZURITE_VERSION}`, '--no-audit', '--no-fund', '--no-save', '--no-package-lock'],
    { cwd: scratch, env: { ...process.env, NPM_CONFIG_UPDATE_NOTIFIER: 'false' } },
  );
  if (res.code !== 0 || !existsSync(blobMain(scratch))) {
    await rm(scratch, { recursive: true, force: true });
    throw new Error(
      `npm install azurite@${AZURITE_VERSION} failed (exit ${res.code}); run npm run provision\n${res.output.slice(-4_000)}`,
    );
  }
  try {
    await rename(scratch, dir);
  } catch (err) {
    // Another run installed it first: theirs is as good as ours.
    if (!existsSync(blobMain(dir))) throw err;
    await rm(scratch, { recursive: true, force: true });
  }
  log.info({ dir }, `azurite@${AZURITE_VERSION} installed`);
  return blobMain(dir);
}

/** Any HTTP answer (an unsigned request gets 403) means the blob service is listening. */
async function probe(accountUrl: string): Promise<true> {
  const res = await fetch(`${accountUrl}?comp=list`, { signal: AbortSignal.timeout(2_000) });
  await res.arrayBuffer();
  return true;
}

export async function startAzurite(opts: AzuriteOptions): Promise<AzuriteServer> {
  const log = toLogger(opts.log);
  const main = await ensureAzurite(opts.log);
  await mkdir(opts.dataDir, { recursive: true });
  return withPortRetry(opts.port === 0, log, async () => {
    const port = await resolvePort(opts.port, 10000);
    const accountUrl = `http://127.0.0.1:${port}/${AZURITE_ACCOUNT}`;
    const args = [
      main,
      '--blobHost',
      '127.0.0.1',
      '--blobPort',
      String(port),
      '--location',
      opts.dataDir,
      '--silent',
      '--disableTelemetry',
      // The SDK may speak a newer service version than this Azurite knows; the calls used are old.
      '--skipApiVersionCheck',
      '--loose',
    ];
    log.info({ accountUrl, dataDir: opts.dataDir }, 'starting Azurite');
    const svc = await startService(
      { name: 'azurite', command: process.execPath, args, log, stopSignal: 'SIGTERM', stopTimeoutMs: 10_000 },
      () => probe(accountUrl),
      opts.startupTimeoutMs ?? 60_000,
    );
    log.info({ accountUrl, pid: svc.pid }, 'Azurite ready');
    return {
      accountUrl,
      accountName: AZURITE_ACCOUNT,
      accountKey: AZURITE_ACCOUNT_KEY,
      stop: () => svc.stop(),
    };
  });
}
