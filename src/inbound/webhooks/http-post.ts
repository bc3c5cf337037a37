import type { AddressPolicy } from '../../shared/address-policy.js';
import { httpExchange, HttpExchangeError } from '../../shared/http-exchange.js';
import type { WebProxy } from '../../shared/web-proxy.js';

/**
 * The outcome of one POST: an HTTP answer (any status) or no answer at all. The receiver's body
 * is never read into it: what a receiver answers is not the tenant's to see (an internal service
 * reached by mistake would show its pages).
 */
export type PostOutcome = { status: number } | { status: null; error: string };

/** Posts a body; injectable so the dispatcher can be tested without sockets. */
export type WebhookPoster = (
  url: string,
  headers: Record<string, string>,
  body: string,
  timeoutMs: number,
) => Promise<PostOutcome>;

/** [4096] bytes of an answer's body read to reuse its connection (then dropped); a longer answer closes it. */
const DRAINED_BYTES = 4096;

/** TLS failures by the code node:tls gives them. */
const TLS_CODES = /^(CERT_|ERR_TLS_|ERR_SSL_|DEPTH_ZERO_|SELF_SIGNED_|UNABLE_TO_)/;

/**
 * No answer, in words a tenant can act on and that say nothing about what lies behind the URL:
 * an address the policy refuses is refused before any connection, so "address not allowed" is
 * all there is to tell whether anything listens there.
 */
export function describeError(err: unknown): string {
  if (!(err instanceof HttpExchangeError)) return 'internal error';
  // The proxy is the operator's; its message names it (never its password).
  if (err.atProxy) return err.message;
  const { code } = err;
  if (code === 'EADDRNOTALLOWED') return 'address not allowed';
  if (code === 'ETIMEDOUT') return 'timed out';
  if (code === 'ECONNREFUSED') return 'connection refused';
  if (code === 'ECONNRESET' || code === 'EPIPE') return 'connection reset';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'host name not found';
  if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH') return 'host unreachable';
  if (TLS_CODES.test(code)) return `TLS failed (${code})`;
  return `connection failed (${code})`;
}

/**
 * POSTs with node:http(s), through the engine's proxy (MAILROOM_HTTPS_PROXY) unless it bypasses
 * the host, to the addresses `addresses` allows (MAILROOM_WEBHOOK_ALLOW_PRIVATE). Redirects are
 * not followed (a 3xx is a failure the administrator should fix).
 */
export function httpPoster(options: { addresses: AddressPolicy; proxy?: WebProxy | undefined }): WebhookPoster {
  // A run posts to one URL many times: parsed once, not per POST.
  let lastUrl = '';
  let parsed: URL | undefined;
  return async (url, headers, body, timeoutMs) => {
    try {
      if (url !== lastUrl || !parsed) {
        parsed = new URL(url);
        lastUrl = url;
      }
      const answer = await httpExchange(parsed, {
        method: 'POST',
        headers,
        body,
        timeoutMs,
        // Only the status is used; an answer's body is read (and dropped) so that its kept-alive
        // connection can carry the next POST, up to a bound past which the connection is closed.
        maxBytes: DRAINED_BYTES,
        discardBody: true,
        proxy: options.proxy,
        addresses: options.addresses,
      });
      return { status: answer.status };
    } catch (err) {
      return { status: null, error: describeError(err) };
    }
  };
}
