import { z } from '@hono/zod-openapi';
import { secretNamePattern, secretNameSchema } from '../../secrets/refs.js';
import type { SecretInfo } from '../../secrets/store.js';
import { createSecret, removeSecret, replaceSecret, secretsOf } from '../../services/secrets.js';
import { commonErrors, ErrorSchema, jsonBody, jsonResponse, notFound } from '../openapi.js';
import { type ApiDeps, apiRoute, newRouter } from '../router.js';

/** A secret as the API shows it: never its value. */
const Secret = z
  .object({ name: z.string(), created_at: z.string(), updated_at: z.string() })
  .openapi('Secret');

const SecretValue = z
  .string()
  .min(1)
  .max(64 * 1024)
  .describe('the credential; never returned');

const NameParam = z.object({
  name: z
    .string()
    .regex(secretNamePattern, 'a secret name: letters, digits, _ . - (at most 128)')
    .openapi({ param: { name: 'name', in: 'path' } }),
});

const toJson = (s: SecretInfo) => ({
  name: s.name,
  created_at: s.createdAt.toISOString(),
  updated_at: s.updatedAt.toISOString(),
});

/** Credentials a tenant stores for its connections: write-only, sealed at rest. */
export function secretsRouter(deps: ApiDeps) {
  const router = newRouter();

  router.openapi(
    apiRoute('connection:write', {
      method: 'post',
      path: '/secrets',
      summary: 'Store a credential (write-only); connections name it as {"secret": "<name>"}',
      request: {
        body: jsonBody(
          z.object({ name: secretNameSchema, value: SecretValue }).strict().openapi('CreateSecret'),
        ),
      },
      responses: {
        201: jsonResponse(Secret, 'Stored'),
        ...commonErrors,
        409: jsonResponse(ErrorSchema, 'Name taken (NAME_TAKEN)'),
      },
    }),
    async (c) =>
      c.json(toJson(await createSecret(deps, c.get('principal').tenantId, c.req.valid('json'))), 201),
  );

  router.openapi(
    apiRoute('connection:write', {
      method: 'put',
      path: '/secrets/{name}',
      summary: 'Store or rotate a credential',
      request: {
        params: NameParam,
        body: jsonBody(z.object({ value: SecretValue }).strict().openapi('RotateSecret')),
      },
      responses: { 200: jsonResponse(Secret, 'Stored'), ...commonErrors },
    }),
    async (c) => {
      const info = await replaceSecret(deps, c.get('principal').tenantId, {
        name: c.req.valid('param').name,
        value: c.req.valid('json').value,
      });
      return c.json(toJson(info), 200);
    },
  );

  router.openapi(
    apiRoute('connection:read', {
      method: 'get',
      path: '/secrets',
      summary: 'The tenant’s secrets: names and dates, never values',
      responses: { 200: jsonResponse(z.object({ items: z.array(Secret) }), 'Secrets'), ...commonErrors },
    }),
    async (c) => c.json({ items: (await secretsOf(deps, c.get('principal').tenantId)).map(toJson) }, 200),
  );

  router.openapi(
    apiRoute('connection:write', {
      method: 'delete',
      path: '/secrets/{name}',
      summary: 'Delete a secret no connection names',
      request: { params: NameParam },
      responses: {
        204: { description: 'Deleted' },
        ...commonErrors,
        ...notFound,
        409: jsonResponse(ErrorSchema, 'Named by a connection'),
      },
    }),
    async (c) => {
      await removeSecret(deps, c.get('principal').tenantId, c.req.valid('param').name);
      return c.body(null, 204);
    },
  );

  return router;
}
