import { type ErrorCode, errorCodes } from '../domain/errors.js';
import { attachSeedExamples } from './docs-examples.js';
import { statusOf } from './errors.js';
import type { newRouter } from './router.js';

type ApiRouter = ReturnType<typeof newRouter>;
export type OpenApiDocument = ReturnType<ApiRouter['getOpenAPI31Document']>;

/** What a client does about each code. Typed by the code list, so a new code cannot go undocumented. */
const errorMeanings: Record<ErrorCode, string> = {
  VALIDATION_ERROR: 'A field is invalid; `field` names it',
  MALFORMED_BODY: 'The body is not valid JSON',
  CONFIRMATION_REQUIRED: 'A destructive operation without `confirm: true`',
  DRY_RUN_REQUIRED: 'An expensive operation: preview it with `dry_run: true` first (within the hour)',
  PATH_NOT_ALLOWED: "A local path outside the tenant's roots (or another tenant's root)",
  ENDPOINT_NOT_ALLOWED: "A host or URL outside the operator's address policy",
  SECRET_NOT_ALLOWED: "A credential reference outside the tenant's policy",
  UNAUTHORIZED: 'Missing, unknown, expired or revoked bearer token',
  INSUFFICIENT_PERMISSIONS: "The token lacks the route's permission (`required_permission`)",
  NOT_FOUND: 'No such route, token or secret',
  INGESTION_NOT_FOUND: 'No such ingestion for this tenant',
  CONNECTION_NOT_FOUND: 'No such connection for this tenant',
  TABLE_NOT_FOUND: 'No such table',
  RUN_NOT_FOUND: 'No such run for this tenant',
  OPERATION_NOT_FOUND: 'No such operation for this tenant',
  SCHEDULE_NOT_FOUND: 'The ingestion has no schedule',
  RUN_IN_PROGRESS: 'Another run or operation holds the ingestion (`current_run_id`)',
  RUN_NOT_RUNNING: 'The run has ended (or is ending): it cannot be paused, resumed or throttled (`status`)',
  NAME_TAKEN: 'The name is already used (`field` names it)',
  INGESTION_EXISTS: 'An ingestion with this name already exists',
  CONNECTION_EXISTS: 'A connection with this name already exists',
  CONNECTION_IN_USE: 'An ingestion still uses this connection or secret',
  DESTINATION_UNAVAILABLE: 'The destination table cannot be used by this ingestion',
  DEPENDENT_OBJECTS: 'Views or other objects depend on the table',
  PLAN_STALE: 'The previewed plan no longer matches the source',
  ROLLBACK_EXPIRED: "The previous version's grace period is over",
  NOT_AWAITING_APPROVAL: 'The operation is not waiting for approval (`status` says what it is doing)',
  NOT_ROLLBACKABLE:
    'Only a completed swap full refresh, not rolled back yet and not followed by another refresh, can be rolled back',
  BODY_TOO_LARGE: 'The body is larger than 1 MiB',
  UNSUPPORTED_MEDIA_TYPE: 'The body was not sent as `application/json`',
  RATE_LIMITED: 'Too many requests of this kind (`retry_after_seconds`)',
  PARTIAL_FAILURE: 'Some steps ran, one failed: the body says what happened and how to recover',
  INTERNAL_ERROR: 'A bug: quote the `request_id` of the body; the details are in the log',
  SERVICE_UNAVAILABLE: 'Postgres or Temporal is unreachable: retry later',
};

/** The error codes as a Markdown table (Swagger UI renders tables in the description). */
export function errorCodesTable(): string {
  const rows = [...errorCodes]
    .sort((a, b) => statusOf[a] - statusOf[b])
    .map((code) => `| ${statusOf[code]} | \`${code}\` | ${errorMeanings[code]} |`);
  return ['| Status | `error_code` | Meaning |', '| --- | --- | --- |', ...rows].join('\n');
}

// One line per paragraph: Swagger UI's Markdown turns single line breaks into <br>.
const description = `Load files from object storage into Postgres tables, exactly once, as Temporal workflows.

## Authentication
Every route under \`/api/v1\` needs \`Authorization: Bearer <token>\`. \`npm start\` prints a development token with every permission; an administrator issues others with \`POST /api/v1/admin/tokens\`. Each route needs exactly one permission, named in its description (and as \`x-permission\`).

On this page: press **Authorize**, paste the token (without \`Bearer\`), then **Try it out** on any route. The page keeps the token in this browser's local storage until you press **Logout** there.

## Errors
Every error answers \`{"detail", "error_code", "help"?}\` plus the fields its code names. Another tenant's ingestions, connections, runs and operations are 404, exactly like missing ones. A 500 other than \`PARTIAL_FAILURE\` is a bug.

${errorCodesTable()}`;

/** The top of the document: what the service is, how to authenticate, and what its errors mean. */
export const documentConfig = {
  openapi: '3.1.0',
  info: { title: 'Autoloader API', version: '0.1.0', description },
  security: [{ bearer: [] }],
};

export const bearerScheme = {
  type: 'http',
  scheme: 'bearer',
  description: 'An API token: `npm start` prints one; `POST /api/v1/admin/tokens` issues more',
} as const;

/**
 * Groups each operation under its resource (the path's first segment under /api/v1), unless its
 * route names tags itself: the reference then reads as one section per resource.
 */
function tagByResource(doc: OpenApiDocument): void {
  for (const [path, item] of Object.entries(doc.paths ?? {})) {
    const resource = /^\/api\/v1\/([^/]+)/.exec(path)?.[1];
    if (!resource) continue;
    for (const method of ['get', 'put', 'post', 'delete', 'patch'] as const) {
      const op = item[method];
      if (op && !op.tags?.length) op.tags = [resource];
    }
  }
}

/**
 * The served OpenAPI document: the routes' own description, with resource tags and seed 001's and
 * seed 004's examples attached. Built on first request (every route is registered by then) and
 * kept: the routes do not change while the process runs.
 */
export function describeApi(app: ApiRouter): () => OpenApiDocument {
  app.openAPIRegistry.registerComponent('securitySchemes', 'bearer', bearerScheme);
  let doc: OpenApiDocument | undefined;
  return () => {
    if (!doc) {
      const built = app.getOpenAPI31Document(documentConfig);
      tagByResource(built);
      attachSeedExamples(built);
      doc = built;
    }
    return doc;
  };
}
