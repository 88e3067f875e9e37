import { z } from 'zod';
import { azureBlobKind } from './azure-blob.js';
import { ftpKind } from './ftp.js';
import { gcsKind } from './gcs.js';
import type { ObjectStoreKind } from './kind.js';
import { localKind } from './local.js';
import { postgresKind } from './postgres.js';
import { s3Kind } from './s3.js';
import { sftpKind } from './sftp.js';

/**
 * Every connection kind, declared once. The API's connection schema, the checks on ingestions, the
 * stores activities read from and the database column's type all come from this list.
 */
export const sourceKinds = {
  [s3Kind.kind]: s3Kind,
  [localKind.kind]: localKind,
  [azureBlobKind.kind]: azureBlobKind,
  [gcsKind.kind]: gcsKind,
  [sftpKind.kind]: sftpKind,
  [ftpKind.kind]: ftpKind,
  [postgresKind.kind]: postgresKind,
} as const;

export type ConnectionKind = keyof typeof sourceKinds;
export const connectionKinds = Object.keys(sourceKinds) as [ConnectionKind, ...ConnectionKind[]];

export interface ConnectionRecord {
  id: string;
  tenantId: string;
  kind: ConnectionKind;
  config: unknown;
}

export function sourceKind(kind: string): ObjectStoreKind {
  const entry = (sourceKinds as Record<string, ObjectStoreKind>)[kind];
  if (!entry) throw new Error(`unknown connection kind ${kind}`);
  return entry;
}

/** A connection's URI of a key, without building its store. */
export function uriOf(conn: ConnectionRecord, bucket: string | undefined, key: string): string {
  const kind = sourceKind(conn.kind);
  return kind.uri(kind.configSchema.parse(conn.config), bucket, key);
}

export function isConnectionKind(kind: string): kind is ConnectionKind {
  return Object.hasOwn(sourceKinds, kind);
}

/** `{name, kind, config}` as the API accepts it: one variant per kind, with that kind's config schema. */
export function connectionInputSchema<N extends z.ZodType>(name: N) {
  const variants = Object.values(sourceKinds).map((k) =>
    z.strictObject({ name, kind: z.literal(k.kind), config: k.configSchema }),
  );
  return z.discriminatedUnion(
    'kind',
    variants as unknown as [(typeof variants)[number], ...(typeof variants)[number][]],
  );
}
