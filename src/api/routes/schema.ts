import { z } from '@hono/zod-openapi';
import { sourceSchema } from '../../domain/schemas.js';
import { findIngestion } from '../../services/ingestions.js';
import { schemaHistory } from '../../services/schema-history.js';
import { commonErrors, IdParam, jsonResponse, notFound } from '../openapi.js';
import { type ApiDeps, apiRoute, newRouter } from '../router.js';

const Column = z
  .object({
    name: z.string(),
    type: z.string(),
    source_name: z
      .string()
      .optional()
      .describe(
        'the field’s name in the files, when the column could not be named like it (too long, empty, reserved)',
      ),
  })
  .openapi('SchemaColumn');

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
  const router = newRouter();

  router.openapi(
    apiRoute('ingestion:read', {
      method: 'get',
      path: '/ingestions/{id}/schema',
      summary: 'Schema history: every set of columns files were loaded with, and what each added',
      request: { params: IdParam },
      responses: { 200: jsonResponse(IngestionSchema, 'Schema history'), ...commonErrors, ...notFound },
    }),
    async (c) => {
      const row = await findIngestion(deps, c.get('principal').tenantId, c.req.valid('param').id);
      const source = sourceSchema.parse(row.source);
      const versions = await schemaHistory(deps, row.id);
      return c.json(
        {
          ingestion_id: row.id,
          destination: `${row.destinationSchema}.${row.destinationTable}`,
          schema_mode: source.schema_mode,
          declared_columns: source.columns ?? null,
          current_version: versions.at(-1)?.version ?? null,
          versions: versions.map((v) => ({
            version: v.version,
            columns: v.columns,
            added: v.added,
            first_file: v.firstFile,
            run_id: v.runId,
            created_at: v.createdAt.toISOString(),
            files: v.files,
          })),
        },
        200,
      );
    },
  );

  return router;
}
