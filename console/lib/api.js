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

/** Reads a file of the API (an attachment) as a Blob, with the bearer token; rejects with an ApiError. */
export async function apiBlob(apiPath) {
  let res;
  try {
    res = await fetch(BASE + apiPath, { headers: { authorization: `Bearer ${token() ?? ''}` }, cache: 'no-store' });
  } catch (err) {
    throw new ApiError(0, { code: 'NETWORK', message: `the engine cannot be reached (${err.message})` });
  }
  if (!res.ok) {
    let error = { code: `HTTP_${res.status}`, message: res.statusText };
    try {
      error = (await res.json()).error ?? error;
    } catch {
      // not JSON: the status says it
    }
    if (res.status === 401) onUnauthorized(new ApiError(401, error));
    throw new ApiError(res.status, error);
  }
  return res.blob();
}

/** The API path with a query of the non-empty values. */
export function withParams(apiPath, values) {
  const query = new URLSearchParams(
    Object.entries(values).filter(([, v]) => v !== undefined && v !== null && v !== ''),
  ).toString();
  return query ? `${apiPath}?${query}` : apiPath;
}
