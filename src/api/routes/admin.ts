import { z } from '@hono/zod-openapi';
import { permissions } from '../../auth/tokens.js';
import {
  issueToken,
  listTenants,
  listTokens,
  putTenant,
  revokeToken,
  type TenantView,
  type TokenView,
} from '../../services/admin.js';
import { tenantPolicySchema } from '../../tenancy/policy.js';
import { commonErrors, IdParam, jsonBody, jsonResponse, notFound } from '../openapi.js';
import { type ApiDeps, apiRoute, newRouter } from '../router.js';

const Tenant = z
  .object({ id: z.string(), name: z.string(), policy: tenantPolicySchema, created_at: z.string() })
  .openapi('Tenant');

const Token = z
  .object({
    id: z.string(),
    tenant_id: z.string(),
    name: z.string(),
    subject: z.string(),
    permissions: z.array(z.string()),
    created_at: z.string(),
    expires_at: z.string().nullable(),
    revoked_at: z.string().nullable(),
  })
  .openapi('Token');

const tenantJson = (t: TenantView) => ({
  id: t.id,
  name: t.name,
  policy: t.policy,
  created_at: t.createdAt.toISOString(),
});
const tokenJson = (t: TokenView) => ({
  id: t.id,
  tenant_id: t.tenantId,
  name: t.name,
  subject: t.subject,
  permissions: t.permissions,
  created_at: t.createdAt.toISOString(),
  expires_at: t.expiresAt?.toISOString() ?? null,
  revoked_at: t.revokedAt?.toISOString() ?? null,
});

/** The operator's routes: tenants and their policies, tokens. */
export function adminRouter(deps: ApiDeps) {
  const router = newRouter();

  router.openapi(
    apiRoute('admin', {
      method: 'get',
      path: '/admin/tenants',
      summary: 'Tenants and what each may use',
      responses: { 200: jsonResponse(z.object({ items: z.array(Tenant) }), 'Tenants'), ...commonErrors },
    }),
    async (c) => c.json({ items: (await listTenants(deps)).map(tenantJson) }, 200),
  );

  router.openapi(
    apiRoute('admin', {
      method: 'put',
      path: '/admin/tenants/{id}',
      summary:
        'Create or update a tenant and its policy (local roots, env prefixes, default credentials, schema prefix)',
      request: {
        params: IdParam,
        body: jsonBody(
          z
            .object({
              name: z.string().min(1).max(200),
              policy: tenantPolicySchema.default(tenantPolicySchema.parse({})),
            })
            .strict()
            .openapi('PutTenant'),
        ),
      },
      responses: { 200: jsonResponse(Tenant, 'Tenant'), ...commonErrors },
    }),
    async (c) => {
      const body = c.req.valid('json');
      return c.json(tenantJson(await putTenant(deps, { id: c.req.valid('param').id, ...body })), 200);
    },
  );

  router.openapi(
    apiRoute('admin', {
      method: 'post',
      path: '/admin/tokens',
      summary: 'Issue a token for a tenant; its value is shown once',
      request: {
        body: jsonBody(
          z
            .object({
              tenant_id: z.string().min(1).max(64),
              name: z.string().min(1).max(200),
              subject: z
                .string()
                .min(1)
                .max(200)
                .describe('who the token acts for, as audit events record it'),
              permissions: z.array(z.enum(permissions)).min(1),
              expires_in_seconds: z
                .number()
                .int()
                .min(60)
                .max(10 * 365 * 24 * 3600)
                .optional(),
            })
            .strict()
            .openapi('IssueToken'),
        ),
      },
      responses: {
        201: jsonResponse(z.object({ id: z.string(), token: z.string() }).openapi('IssuedToken'), 'Issued'),
        ...commonErrors,
      },
    }),
    async (c) => {
      const b = c.req.valid('json');
      const issued = await issueToken(deps, {
        tenantId: b.tenant_id,
        name: b.name,
        subject: b.subject,
        permissions: b.permissions,
        expiresAt: b.expires_in_seconds ? new Date(Date.now() + b.expires_in_seconds * 1000) : null,
      });
      return c.json(issued, 201);
    },
  );

  router.openapi(
    apiRoute('admin', {
      method: 'get',
      path: '/admin/tokens',
      summary: 'Tokens (never their secret)',
      request: { query: z.object({ tenant_id: z.string().max(64).optional() }) },
      responses: { 200: jsonResponse(z.object({ items: z.array(Token) }), 'Tokens'), ...commonErrors },
    }),
    async (c) =>
      c.json({ items: (await listTokens(deps, c.req.valid('query').tenant_id)).map(tokenJson) }, 200),
  );

  router.openapi(
    apiRoute('admin', {
      method: 'delete',
      path: '/admin/tokens/{id}',
      summary: 'Revoke a token (it stops working at once)',
      request: { params: IdParam },
      responses: { 204: { description: 'Revoked' }, ...commonErrors, ...notFound },
    }),
    async (c) => {
      await revokeToken(deps, c.req.valid('param').id);
      return c.body(null, 204);
    },
  );

  return router;
}
