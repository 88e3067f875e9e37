import type { ApiClient } from './client.js';
import type { ConnectionJson, IngestionJson, Page } from './types.js';

/**
 * An ingestion by id or by name. Names are unique per tenant; an argument that is neither is passed
 * on as an id, so the API's own 404 (INGESTION_NOT_FOUND) is what the user sees.
 */
export async function resolveIngestion(api: ApiClient, ref: string): Promise<IngestionJson> {
  const { body } = await api.request<Page<IngestionJson>>('GET', '/ingestions');
  const found = body.items.find((i) => i.id === ref) ?? body.items.find((i) => i.name === ref);
  if (found) return found;
  return (await api.request<IngestionJson>('GET', `/ingestions/${encodeURIComponent(ref)}`)).body;
}

/** A connection by id or name; an unknown one reaches the API as an id (CONNECTION_NOT_FOUND). */
export async function resolveConnectionId(api: ApiClient, ref: string): Promise<string> {
  const { body } = await api.request<Page<ConnectionJson>>('GET', '/connections');
  return (body.items.find((c) => c.id === ref) ?? body.items.find((c) => c.name === ref))?.id ?? ref;
}
