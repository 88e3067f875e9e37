import type { SchemaColumn } from '../db/schema/index.js';
import { filesPerSchemaVersion } from '../ledger/processed-files.js';
import type { ServiceDeps } from './deps.js';

export interface SchemaVersionView {
  version: number;
  columns: SchemaColumn[];
  /** Columns this version has that the one before it had not. */
  added: SchemaColumn[];
  firstFile: string;
  runId: string;
  createdAt: Date;
  /** Files whose latest load used this version. */
  files: number;
}

/** The schema history of an ingestion: which columns each file was loaded with, oldest first. */
export async function schemaHistory(
  deps: Pick<ServiceDeps, 'sql'>,
  ingestionId: string,
): Promise<SchemaVersionView[]> {
  const [versions, files] = await Promise.all([
    deps.sql<
      { version: number; columns: SchemaColumn[]; firstFile: string; runId: string; createdAt: Date }[]
    >`
      select version, columns, first_file as "firstFile", run_id as "runId", created_at as "createdAt"
      from autoloader.schema_versions where ingestion_id = ${ingestionId} order by version`,
    filesPerSchemaVersion(deps.sql, ingestionId),
  ]);
  let previous = new Set<string>();
  return versions.map((v) => {
    const added = v.columns.filter((col) => !previous.has(col.name));
    previous = new Set(v.columns.map((col) => col.name));
    return { ...v, createdAt: new Date(v.createdAt), added, files: files.get(v.version) ?? 0 };
  });
}
