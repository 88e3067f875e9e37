import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Context } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import type { CookieOptions } from 'hono/utils/cookie';

export const basePath = '/ui';

const SESSION_COOKIE = 'autoloader_console';
const LOGIN_COOKIE = 'autoloader_console_login';
/** A pasted token should not stay signed in forever on a shared machine. */
const SESSION_SECONDS = 12 * 3600;

export interface Session {
  token: string;
  /** Sent back in a hidden field by every form that changes something. */
  csrf: string;
}

const newNonce = () => randomBytes(24).toString('base64url');

function cookieOptions(c: Context, maxAge?: number): CookieOptions {
  // Behind a TLS-terminating proxy the request itself is plain http; the proxy says so in the header.
  const https = new URL(c.req.url).protocol === 'https:' || c.req.header('x-forwarded-proto') === 'https';
  return { path: basePath, httpOnly: true, sameSite: 'Strict', secure: https, maxAge };
}

/**
 * The session is one HttpOnly cookie, `<csrf>.<token>`: page scripts never see the token, and the
 * CSRF value is bound to the session it protects (a base64url nonce has no '.', so the first '.'
 * splits the two). Nothing is kept server-side, so any API instance serves any session.
 */
export function readSession(c: Context): Session | undefined {
  const raw = getCookie(c, SESSION_COOKIE);
  const dot = raw?.indexOf('.') ?? -1;
  if (!raw || dot <= 0 || dot === raw.length - 1) return undefined;
  return { csrf: raw.slice(0, dot), token: raw.slice(dot + 1) };
}

export function startSession(c: Context, token: string): void {
  setCookie(c, SESSION_COOKIE, `${newNonce()}.${token}`, cookieOptions(c, SESSION_SECONDS));
  deleteCookie(c, LOGIN_COOKIE, cookieOptions(c));
}

export function endSession(c: Context): void {
  deleteCookie(c, SESSION_COOKIE, cookieOptions(c));
}

/**
 * The sign-in form's own CSRF value: without one, another site could sign a browser in with the
 * attacker's token (login CSRF) and watch what the victim then does.
 */
export function loginNonce(c: Context): string {
  const existing = getCookie(c, LOGIN_COOKIE);
  if (existing) return existing;
  const nonce = newNonce();
  setCookie(c, LOGIN_COOKIE, nonce, cookieOptions(c, 3600));
  return nonce;
}

export function checkLoginNonce(c: Context, submitted: unknown): boolean {
  return sameSecret(getCookie(c, LOGIN_COOKIE), submitted);
}

export function sameSecret(expected: string | undefined, submitted: unknown): boolean {
  if (!expected || typeof submitted !== 'string') return false;
  const a = Buffer.from(expected);
  const b = Buffer.from(submitted);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * A pasted token, tidied: surrounding spaces and a copied "Bearer " prefix are dropped. Returns
 * undefined for text that cannot be a token (it would break the Authorization header).
 */
export function normalizeToken(input: unknown): string | undefined {
  if (typeof input !== 'string') return undefined;
  const token = input.trim().replace(/^Bearer\s+/i, '');
  return /^[\x21-\x7e]{1,512}$/.test(token) ? token : undefined;
}
