import { createRoute, OpenAPIHono, type RouteConfig } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import type { Permission, Principal } from '../auth/tokens.js';
import { errors } from '../domain/errors.js';
import type { Logger } from '../lib/logger.js';
import type { ServiceDeps } from '../services/deps.js';
import { validationError } from './errors.js';

/** What the API's routers are built from: the use cases' dependencies and a logger. */
export interface ApiDeps extends ServiceDeps {
  log: Logger;
  /** The Temporal UI, for links from the console (TEMPORAL_UI_URL, or the embedded dev server's). */
  temporalUiUrl?: string;
}

export type AppEnv = { Variables: { principal: Principal } };

/** A router whose request validation fails as VALIDATION_ERROR naming the field. */
export function newRouter() {
  return new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (!result.success) {
        const where = result.target === 'json' ? 'body' : result.target === 'param' ? 'path' : 'query';
        throw validationError(result.error, where);
      }
    },
  });
}

function requirePermission(permission: Permission): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    if (!c.get('principal').permissions.includes(permission))
      throw errors.insufficientPermissions(permission);
    await next();
  };
}

/**
 * A route of the API with the one permission it needs (the contract's list). The permission is
 * checked before the request is validated, and shown in the OpenAPI document as `x-permission`, so
 * a route without one cannot be written and a test can walk every route.
 */
export function apiRoute<const R extends Omit<RouteConfig, 'middleware'>>(permission: Permission, config: R) {
  return createRoute({
    ...config,
    'x-permission': permission,
    description: [config.description, `Needs the \`${permission}\` permission.`].filter(Boolean).join('\n\n'),
    middleware: [requirePermission(permission)] as const,
  });
}
