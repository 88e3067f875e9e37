import { and, desc, eq, lt } from 'drizzle-orm';
import { type WebhookEvent, webhookDeliveries, webhooks } from '../db/schema/index.js';
import { AppError, errors } from '../domain/errors.js';
import { newId } from '../lib/ids.js';
import { hostOf } from '../net/address-policy.js';
import { type SecretRef, SecretRefError } from '../secrets/refs.js';
import { checkHostAtApi } from '../sources/remote.js';
import type { ServiceDeps } from './deps.js';

export type WebhookRecord = typeof webhooks.$inferSelect;
export type DeliveryRecord = typeof webhookDeliveries.$inferSelect;

export interface CreateWebhookInput {
  url: string;
  events: WebhookEvent[];
  ingestion_id?: string | null;
  secret: SecretRef;
}

const webhookNotFound = () => new AppError('NOT_FOUND', 'Webhook not found');

/**
 * The URL must be one the address policy allows (checked again, on the resolved address, at every
 * delivery). Plain http is accepted only where the operator allows private endpoints (a
 * development or test deployment): elsewhere bodies and signatures travel over TLS.
 */
async function checkUrl(deps: Pick<ServiceDeps, 'sources'>, tenantId: string, url: string): Promise<void> {
  const parsed = new URL(url);
  const ctx = await deps.sources(tenantId);
  if (parsed.protocol === 'http:' && !ctx.address.allowPrivate)
    throw new AppError('ENDPOINT_NOT_ALLOWED', 'Webhook URLs must use https', {
      field: 'url',
      help: 'Plain http is accepted only where the operator sets AUTOLOADER_ALLOW_PRIVATE_ENDPOINTS=true',
    });
  if (parsed.username || parsed.password)
    throw errors.validation('url', 'must not carry credentials; the signature authenticates deliveries');
  await checkHostAtApi(hostOf(url), ctx.address, 'url');
}

export async function createWebhook(
  deps: Pick<ServiceDeps, 'db' | 'sql' | 'sources'>,
  principal: { tenantId: string; subject: string },
  input: CreateWebhookInput,
): Promise<WebhookRecord> {
  const { tenantId } = principal;
  await checkUrl(deps, tenantId, input.url);
  try {
    await (await deps.sources(tenantId)).secrets.check(input.secret, 'secret');
  } catch (err) {
    if (err instanceof SecretRefError) throw new AppError(err.code, err.message, { field: err.field });
    throw err;
  }
  if (input.ingestion_id) {
    const [row] = await deps.sql`
      select 1 from autoloader.ingestions where id = ${input.ingestion_id} and tenant_id = ${tenantId}`;
    if (!row) throw errors.ingestionNotFound();
  }
  const [row] = await deps.db
    .insert(webhooks)
    .values({
      id: newId('whk'),
      tenantId,
      url: input.url,
      events: [...new Set(input.events)],
      ingestionId: input.ingestion_id ?? null,
      secretRef: input.secret,
      createdBy: principal.subject,
    })
    .returning();
  return row!;
}

export async function listWebhooks(
  deps: Pick<ServiceDeps, 'db'>,
  tenantId: string,
): Promise<WebhookRecord[]> {
  return deps.db.select().from(webhooks).where(eq(webhooks.tenantId, tenantId)).orderBy(webhooks.createdAt);
}

/** Another tenant's webhook is 404 exactly like a missing one. */
export async function findWebhook(
  deps: Pick<ServiceDeps, 'db'>,
  tenantId: string,
  id: string,
): Promise<WebhookRecord> {
  const [row] = await deps.db
    .select()
    .from(webhooks)
    .where(and(eq(webhooks.id, id), eq(webhooks.tenantId, tenantId)));
  if (!row) throw webhookNotFound();
  return row;
}

/** Deletes the webhook and its delivery log; deliveries still retrying stop at their next attempt. */
export async function deleteWebhook(
  deps: Pick<ServiceDeps, 'db'>,
  tenantId: string,
  id: string,
): Promise<void> {
  const rows = await deps.db
    .delete(webhooks)
    .where(and(eq(webhooks.id, id), eq(webhooks.tenantId, tenantId)))
    .returning({ id: webhooks.id });
  if (rows.length === 0) throw webhookNotFound();
}

/** The delivery log, newest attempt first; the cursor is the last attempt's id. */
export async function listDeliveries(
  deps: Pick<ServiceDeps, 'db'>,
  tenantId: string,
  id: string,
  page: { limit: number; cursor?: string },
): Promise<{ items: DeliveryRecord[]; nextCursor: string | null }> {
  await findWebhook(deps, tenantId, id);
  const before = page.cursor === undefined ? undefined : Number.parseInt(page.cursor, 10);
  if (before !== undefined && !Number.isSafeInteger(before))
    throw errors.validation('cursor', 'not a cursor this API returned', 'query');
  const items = await deps.db
    .select()
    .from(webhookDeliveries)
    .where(
      and(
        eq(webhookDeliveries.webhookId, id),
        before === undefined ? undefined : lt(webhookDeliveries.id, before),
      ),
    )
    .orderBy(desc(webhookDeliveries.id))
    .limit(page.limit + 1);
  const more = items.length > page.limit;
  const shown = items.slice(0, page.limit);
  return { items: shown, nextCursor: more ? String(shown.at(-1)!.id) : null };
}
