/**
 * The API client: same origin, bearer token from session storage (never the URL), errors as
 * `ApiError` carrying the API's `{code, message, field, details}`.
 */
const TOKEN_KEY = 'mailroom.apiToken';
const BASE = '/api/v1';

export class ApiError extends Error {
  constructor(status, error) {
    super(error.message);
    this.name = 'ApiError';
    this.status = status;
    this.code = error.code;
    this.field = error.field;
    this.details = error.details;
  }
}

let onUnauthorized = () => undefined;

/** Called when the API refuses the token (revoked, or the engine got a new one). */
export function whenUnauthorized(fn) {
  onUnauthorized = fn;
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function signIn(value) {
  sessionStorage.setItem(TOKEN_KEY, value);
}

export function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
}

/** Calls the API; resolves with the JSON answer (null for 204) or rejects with an ApiError. */
export async function api(method, path, body, authToken = token()) {
  const headers = { authorization: `Bearer ${authToken ?? ''}`, accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res;
  try {
    res = await fetch(BASE + path, {
      method,
      headers,
      cache: 'no-store',
      ...(body !== undefined && { body: JSON.stringify(body) }),
    });
  } catch (err) {
    throw new ApiError(0, { code: 'NETWORK', message: `the engine cannot be reached (${err.message})` });
  }
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!res.ok) {
    const error = new ApiError(res.status, data?.error ?? { code: `HTTP_${res.status}`, message: res.statusText });
    if (res.status === 401 && authToken === token()) onUnauthorized(error);
    throw error;
  }
  return data;
}

/** Path segments, encoded. */
export function path(...segments) {
  return segments.map((s) => `/${encodeURIComponent(s)}`).join('');
}
