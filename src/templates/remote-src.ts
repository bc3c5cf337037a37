import type { AddressPolicy } from '../shared/address-policy.js';
import { httpExchange, HttpExchangeError } from '../shared/http-exchange.js';
import type { WebProxy } from '../shared/web-proxy.js';
import { SrcError } from './src-path.js';

/** [5] redirects followed for one remote Src. */
const MAX_REDIRECTS = 5;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);

export interface RemoteFetchOptions {
  /** Give up after this many milliseconds (redirects included). */
  timeoutMs: number;
  /** Largest body accepted. */
  maxBytes: number;
  /** Through this proxy (MAILROOM_HTTPS_PROXY), unless it bypasses the host. */
  proxy?: WebProxy | undefined;
  /** The addresses the first request and every redirect may reach (MAILROOM_REMOTE_SRC_ALLOW_PRIVATE). */
  addresses: AddressPolicy;
  /** Plain http:// is fetched too (MAILROOM_REMOTE_SRC_ALLOW_HTTP); else https only, redirects included. */
  allowHttp: boolean;
}

/**
 * A URL as messages show it: without user name, password, query or fragment (a signed URL a
 * redirect leads to carries its signature in the query).
 */
function label(url: URL): string {
  return `${url.origin}${url.pathname}`;
}

/**
 * Fetches a remote (https, and http when allowed) Src when remote sources are enabled. Bounded in
 * time and size; up to five redirects are followed, each held to the same rules as the first
 * request: its scheme, and the address policy, checked as each connection is made (a public
 * server cannot redirect the engine to an internal one).
 */
export async function fetchRemote(url: URL, options: RemoteFetchOptions): Promise<Buffer> {
  const deadline = Date.now() + options.timeoutMs;
  let target = url;
  for (let hop = 0; ; hop += 1) {
    const redirected = hop > 0 ? ` (redirected from ${label(url)})` : '';
    if (target.protocol !== 'http:' && target.protocol !== 'https:') {
      throw new SrcError(`${target.protocol} URLs are refused${redirected}`);
    }
    if (target.protocol === 'http:' && !options.allowHttp) {
      throw new SrcError(
        `${label(target)} is refused: remote Src are fetched over https only${redirected} ` +
          `(MAILROOM_REMOTE_SRC_ALLOW_HTTP allows http)`,
      );
    }
    let answer;
    try {
      answer = await httpExchange(target, {
        timeoutMs: Math.max(1, deadline - Date.now()),
        maxBytes: options.maxBytes,
        proxy: options.proxy,
        addresses: options.addresses,
      });
    } catch (err) {
      if (err instanceof HttpExchangeError && err.code === 'ETOOLARGE') {
        throw new SrcError(`${label(url)} is larger than ${options.maxBytes} bytes`);
      }
      const message = (err as Error).message;
      const why = message.startsWith(`${label(target)}: `) ? message.slice(label(target).length + 2) : message;
      const hint =
        err instanceof HttpExchangeError && err.code === 'EADDRNOTALLOWED'
          ? ' (MAILROOM_REMOTE_SRC_ALLOW_PRIVATE allows it)'
          : '';
      throw new SrcError(`fetching ${label(target)} failed${redirected}: ${why}${hint}`);
    }
    const location = answer.headers.location;
    if (REDIRECTS.has(answer.status) && location !== undefined) {
      if (hop === MAX_REDIRECTS) throw new SrcError(`fetching ${label(url)}: more than ${MAX_REDIRECTS} redirects`);
      target = new URL(location, target);
      continue;
    }
    if (answer.status < 200 || answer.status > 299) {
      throw new SrcError(`fetching ${label(target)} answered HTTP ${answer.status}`);
    }
    return answer.body;
  }
}
