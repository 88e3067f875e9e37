import { createRoute, z } from '@hono/zod-openapi';
import { sourceSchema } from '../../domain/schemas.js';
import { type ApiDeps, newRouter } from '../app.js';
import { commonErrors, IdParam, jsonResponse, notFound } from '../openapi.js';
import { findIngestion } from '../shared/ingestion-access.js';

const Column = z.object({ name: z.string(), type: z.string() }).openapi('SchemaColumn');

const SchemaVersion = z
  .object({
    version: z.number().describe('1 for the first set of columns, then one more each time they change'),
    columns: z.array(Column).describe('destination columns in table order, lineage columns left out'),
    added: z.array(Column).describe('columns this version has that the one before it had not'),
    first_file: z.string().describe('the file that first loaded with these columns'),
    run_id: z.string(),
    created_at: z.string(),
    files: z.number().describe('files whose latest load used this version'),
  })
  .openapi('SchemaVersion');

const IngestionSchema = z
  .object({
    ingestion_id: z.string(),
    destination: z.string(),
    schema_mode: z.string(),
    declared_columns: z.array(Column).nullable().describe('the explicit schema, when the ingestion has one'),
    current_version: z.number().nullable().describe('the newest version; null before the first file loads'),
    versions: z.array(SchemaVersion).describe('oldest first'),
  })
  .openapi('IngestionSchema');

/** The schema history of an ingestion: which columns each file was loaded with. */
export function schemaRouter(deps: ApiDeps) {
  const { db, sql } = deps;
  const router = newRouter();

  router.openapi(
    createRoute({
      method: 'get',
      path: '/ingestions/{id}/schema',
      summary: 'Schema history: every set of columns files were loaded with, and what each added',
      request: { params: IdParam },
      responses: { 200: jsonResponse(IngestionSchema, 'Schema history'), ...commonErrors, ...notFound },
    }),
    async (c) => {
      const row = await findIngestion(db, c.get('principal').tenantId, c.req.valid('param').id);
      const source = sourceSchema.parse(row.source);
      const versions = await sql<
        {
          version: number;
          columns: { name: string; type: string }[];
          firstFile: string;
          runId: string;
          createdAt: Date;
          files: number;
        }[]
      >`
        select v.version, v.columns, v.first_file as "firstFile", v.run_id as "runId", v.created_at as "createdAt",
               (select count(*) from autoloader.processed_files f
                where f.ingestion_id = v.ingestion_id and f.scope = 'live' and f.schema_version = v.version)::int as files
        from autoloader.schema_versions v
        where v.ingestion_id = ${row.id}
        order by v.version`;
      let previous = new Set<string>();
      const items = versions.map((v) => {
        const added = v.columns.filter((col) => !previous.has(col.name));
        previous = new Set(v.columns.map((col) => col.name));
        return {
          version: v.version,
          columns: v.columns,
          added,
          first_file: v.firstFile,
          run_id: v.runId,
          created_at: new Date(v.createdAt).toISOString(),
          files: v.files,
        };
      });
      return c.json(
        {
          ingestion_id: row.id,
          destination: `${row.destinationSchema}.${row.destinationTable}`,
          schema_mode: source.schema_mode,
          declared_columns: source.columns ?? null,
          current_version: items.at(-1)?.version ?? null,
          versions: items,
        },
        200,
      );
    },
  );

  return router;
}
