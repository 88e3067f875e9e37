import { readFile } from 'node:fs/promises';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import type { Config } from '../config.js';

type TemporalConfig = Config['temporal'];

async function tlsOptions(cfg: TemporalConfig) {
  if (!cfg.tls) return undefined;
  if (cfg.tlsCertPath && cfg.tlsKeyPath) {
    return { clientCertPair: { crt: await readFile(cfg.tlsCertPath), key: await readFile(cfg.tlsKeyPath) } };
  }
  return true as const;
}

export async function connectClient(cfg: TemporalConfig, address: string): Promise<Client> {
  const connection = await Connection.connect({ address, tls: await tlsOptions(cfg), apiKey: cfg.apiKey });
  return new Client({ connection, namespace: cfg.namespace });
}

export async function connectWorker(cfg: TemporalConfig, address: string): Promise<NativeConnection> {
  return NativeConnection.connect({ address, tls: await tlsOptions(cfg), apiKey: cfg.apiKey });
}
