import type { App } from './app.js';

export interface ApiResponse<T> {
  status: number;
  body: T;
  headers: Headers;
}

/**
 * Calls the API in-process (`app.request`, no socket) with a bearer token: what tests, the benchmark
 * and scripts use to drive the service exactly as a client would. A string body is sent as is, so a
 * caller can send malformed JSON on purpose.
 */
export function inProcessClient(app: App, token: string) {
  return async function call<T = Record<string, unknown>>(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<ApiResponse<T>> {
    const res = await app.request(path, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...headers,
      },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : {}) as T, headers: res.headers };
  };
}
