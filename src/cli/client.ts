import type { ErrorBody } from '../api/errors.js';
import { ApiRequestError, ConnectionError } from './errors.js';

export interface ApiResponse<T> {
  status: number;
  body: T;
}

export type Query = Record<string, string | number | boolean | undefined>;

export interface ApiClient {
  readonly baseUrl: string;
  request<T>(method: string, path: string, opts?: { body?: unknown; query?: Query }): Promise<ApiResponse<T>>;
}

/** The network error code behind a failed fetch (undici nests it, once per address tried). */
function networkCode(err: unknown): string | undefined {
  const cause = (err as { cause?: { code?: string; errors?: { code?: string }[] } }).cause;
  return cause?.code ?? cause?.errors?.find((e) => e.code)?.code;
}

function isErrorBody(value: unknown): value is ErrorBody {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as ErrorBody).detail === 'string' &&
    typeof (value as ErrorBody).error_code === 'string'
  );
}

/**
 * A tiny client over global fetch: every call is `/api/v1/...` with the bearer token; a non-2xx
 * answer becomes an ApiRequestError carrying the API's error body.
 */
export function createClient(opts: { baseUrl: string; token: string | undefined }): ApiClient {
  const baseUrl = opts.baseUrl.replace(/\/+$/, '');
  return {
    baseUrl,
    async request<T>(method: string, path: string, { body, query }: { body?: unknown; query?: Query } = {}) {
      const url = new URL(`${baseUrl}/api/v1${path}`);
      for (const [k, v] of Object.entries(query ?? {}))
        if (v !== undefined) url.searchParams.set(k, String(v));
      const headers: Record<string, string> = { accept: 'application/json' };
      if (opts.token) headers.authorization = `Bearer ${opts.token}`;
      if (body !== undefined) headers['content-type'] = 'application/json';
      let res: Response;
      try {
        res = await fetch(url, {
          method,
          headers,
          body: body === undefined ? undefined : JSON.stringify(body),
        });
      } catch (err) {
        throw new ConnectionError(baseUrl, networkCode(err));
      }
      const text = await res.text();
      let parsed: unknown = null;
      if (text !== '') {
        try {
          parsed = JSON.parse(text);
        } catch {
          // Not ours: a proxy's HTML page or a different server on this port. Say what came back.
          throw new ApiRequestError(res.status, {
            detail: `unexpected non-JSON answer from ${url.origin}: ${text.slice(0, 120)}`,
            error_code: 'UNEXPECTED_RESPONSE',
            help: 'Is AUTOLOADER_URL pointing at the Autoloader API?',
          });
        }
      }
      if (!res.ok) {
        throw new ApiRequestError(
          res.status,
          isErrorBody(parsed) ? parsed : { detail: `HTTP ${res.status}`, error_code: `HTTP_${res.status}` },
        );
      }
      return { status: res.status, body: parsed as T };
    },
  };
}
