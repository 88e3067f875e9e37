import { z } from '@hono/zod-openapi';
import { webhookEvents } from '../../db/schema/index.js';
import { secretRefSchema } from '../../secrets/refs.js';
import {
  createWebhook,
  type DeliveryRecord,
  deleteWebhook,
  findWebhook,
  listDeliveries,
  listWebhooks,
  type WebhookRecord,
} from '../../services/webhooks.js';
import {
  commonErrors,
  ErrorSchema,
  IdParam,
  jsonBody,
  jsonResponse,
  notFound,
  PageQuery,
} from '../openapi.js';
import { type ApiDeps, apiRoute, newRouter } from '../router.js';

const webhookUrl = z
  .string()
  .max(2048)
  .refine(
    (v) => {
      try {
        return ['https:', 'http:'].includes(new URL(v).protocol);
      } catch (err) {
        if (err instanceof TypeError) return false;
        throw err;
      }
    },
    { message: 'an https:// URL' },
  )
  .describe(
    'Where events are POSTed: https (plain http only where the operator allows private endpoints). ' +
      'Checked against the address policy now and, on the resolved address, at every delivery.',
  );

const EventName = z.enum(webhookEvents);

const CreateWebhook = z
  .object({
    url: webhookUrl,
    events: z.array(EventName).min(1).describe('The events to deliver'),
    ingestion_id: z
      .string()
      .min(1)
      .max(64)
      .nullish()
      .describe('Only this ingestion’s events (runs, refreshes, deletions); absent: all of the tenant’s'),
    secret: secretRefSchema.describe(
      'The signing secret, as a stored secret (`{"secret": "<name>"}`, stored with PUT /secrets/{name}) ' +
        'or an allowed env variable; never the value. Rotating the secret signs the next attempts with the new value.',
    ),
  })
  .strict()
  .openapi('CreateWebhook');

const Webhook = z
  .object({
    id: z.string(),
    url: z.string(),
    events: z.array(EventName),
    ingestion_id: z.string().nullable(),
    secret: secretRefSchema,
    created_by: z.string(),
    created_at: z.string(),
  })
  .openapi('Webhook');

const Delivery = z
  .object({
    id: z.number(),
    event_id: z.string(),
    event_type: z.string(),
    attempt: z.number().describe('1 for the first attempt, then each retry'),
    status_code: z.number().nullable().describe('The receiver’s HTTP status; null when none came'),
    error: z.string().nullable().describe('Why the attempt failed (an error status, a refused address…)'),
    attempted_at: z.string(),
  })
  .openapi('WebhookDelivery');

const toJson = (w: WebhookRecord) => ({
  id: w.id,
  url: w.url,
  events: w.events,
  ingestion_id: w.ingestionId,
  secret: w.secretRef,
  created_by: w.createdBy,
  created_at: w.createdAt.toISOString(),
});

const toDeliveryJson = (d: DeliveryRecord) => ({
  id: d.id,
  event_id: d.eventId,
  event_type: d.eventType,
  attempt: d.attempt,
  status_code: d.statusCode,
  error: d.error,
  attempted_at: d.attemptedAt.toISOString(),
});

const signatureNote =
  'Each delivery POSTs `{id, type, created_at, data}` with the header ' +
  '`Autoloader-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">` (Stripe’s scheme), ' +
  'retried with exponential backoff until WEBHOOK_DELIVERY_DEADLINE_SECONDS (24 h) while the receiver ' +
  'does not answer 2xx. A run’s end never waits for a delivery.';

/** Notification webhooks of a tenant, and their delivery log. */
export function webhooksRouter(deps: ApiDeps) {
  const router = newRouter();

  router.openapi(
    apiRoute('ingestion:write', {
      method: 'post',
      path: '/webhooks',
      summary: 'Subscribe a URL to run, refresh and deletion events',
      description: signatureNote,
      request: { body: jsonBody(CreateWebhook) },
      responses: {
        201: jsonResponse(Webhook, 'Created'),
        ...commonErrors,
        400: jsonResponse(
          ErrorSchema,
          'Invalid request (VALIDATION_ERROR naming the field; ENDPOINT_NOT_ALLOWED for a refused URL)',
        ),
        404: jsonResponse(
          ErrorSchema,
          'The ingestion filter names no ingestion of the tenant (INGESTION_NOT_FOUND)',
        ),
      },
    }),
    async (c) => c.json(toJson(await createWebhook(deps, c.get('principal'), c.req.valid('json'))), 201),
  );

  router.openapi(
    apiRoute('ingestion:read', {
      method: 'get',
      path: '/webhooks',
      summary: 'The tenant’s webhooks',
      responses: { 200: jsonResponse(z.object({ items: z.array(Webhook) }), 'Webhooks'), ...commonErrors },
    }),
    async (c) => c.json({ items: (await listWebhooks(deps, c.get('principal').tenantId)).map(toJson) }, 200),
  );

  router.openapi(
    apiRoute('ingestion:read', {
      method: 'get',
      path: '/webhooks/{id}',
      summary: 'One webhook',
      request: { params: IdParam },
      responses: { 200: jsonResponse(Webhook, 'The webhook'), ...commonErrors, ...notFound },
    }),
    async (c) =>
      c.json(toJson(await findWebhook(deps, c.get('principal').tenantId, c.req.valid('param').id)), 200),
  );

  router.openapi(
    apiRoute('ingestion:write', {
      method: 'delete',
      path: '/webhooks/{id}',
      summary: 'Delete a webhook and its delivery log (deliveries in flight stop at their next attempt)',
      request: { params: IdParam },
      responses: { 204: { description: 'Deleted' }, ...commonErrors, ...notFound },
    }),
    async (c) => {
      await deleteWebhook(deps, c.get('principal').tenantId, c.req.valid('param').id);
      return c.body(null, 204);
    },
  );

  router.openapi(
    apiRoute('ingestion:read', {
      method: 'get',
      path: '/webhooks/{id}/deliveries',
      summary: 'The webhook’s delivery log: every attempt, newest first',
      request: { params: IdParam, query: PageQuery },
      responses: {
        200: jsonResponse(
          z.object({ items: z.array(Delivery), next_cursor: z.string().nullable() }),
          'Delivery attempts',
        ),
        ...commonErrors,
        ...notFound,
      },
    }),
    async (c) => {
      const page = await listDeliveries(
        deps,
        c.get('principal').tenantId,
        c.req.valid('param').id,
        c.req.valid('query'),
      );
      return c.json({ items: page.items.map(toDeliveryJson), next_cursor: page.nextCursor }, 200);
    },
  );

  return router;
}
