import { httpExchange, HttpExchangeError } from '../../shared/http-exchange.js';
import type { WebProxy } from '../../shared/web-proxy.js';

/** The outcome of one POST: an HTTP answer (any status) or no answer at all. */
export type PostOutcome = { status: number; bodySnippet: string } | { status: null; error: string };

/** Posts a body; injectable so the dispatcher can be tested without sockets. */
export type WebhookPoster = (
  url: string,
  headers: Record<string, string>,
  body: string,
  timeoutMs: number,
) => Promise<PostOutcome>;

const SNIPPET_CHARS = 200;
/** Bytes of an answer read for its snippet (the rest is not waited for). */
const SNIPPET_BYTES = 4 * SNIPPET_CHARS;

function describeError(err: unknown): string {
  if (err instanceof HttpExchangeError) {
    if (err.atProxy) return err.message;
    if (err.code === 'ETIMEDOUT') return 'timed out';
    return `connection failed (${err.code})`;
  }
  return err instanceof Error ? err.message : String(err);
}

/**
 * POSTs with node:http(s), through the engine's proxy (MAILROOM_HTTPS_PROXY) unless it bypasses
 * the host. Redirects are not followed (a 3xx is a failure the administrator should fix).
 */
export function httpPoster(proxy?: WebProxy): WebhookPoster {
  return async (url, headers, body, timeoutMs) => {
    try {
      const answer = await httpExchange(new URL(url), {
        method: 'POST',
        headers,
        body,
        timeoutMs,
        maxBytes: SNIPPET_BYTES,
        truncate: true,
        proxy,
      });
      return { status: answer.status, bodySnippet: answer.body.toString('utf8').slice(0, SNIPPET_CHARS) };
    } catch (err) {
      return { status: null, error: describeError(err) };
    }
  };
}
