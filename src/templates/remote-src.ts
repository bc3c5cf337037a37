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
}

/**
 * A URL as messages show it: without user name, password, query or fragment (a signed URL a
 * redirect leads to carries its signature in the query).
 */
function label(url: URL): string {
  return `${url.origin}${url.pathname}`;
}

/**
 * Fetches a remote (http/https) Src when remote sources are enabled. Bounded in time and size;
 * up to five redirects are followed, each only to http/https.
 */
export async function fetchRemote(url: URL, options: RemoteFetchOptions): Promise<Buffer> {
  const deadline = Date.now() + options.timeoutMs;
  let target = url;
  for (let hop = 0; ; hop += 1) {
    if (target.protocol !== 'http:' && target.protocol !== 'https:') {
      throw new SrcError(`${target.protocol} URLs are refused${hop > 0 ? ` (redirected from ${label(url)})` : ''}`);
    }
    let answer;
    try {
      answer = await httpExchange(target, {
        timeoutMs: Math.max(1, deadline - Date.now()),
        maxBytes: options.maxBytes,
        proxy: options.proxy,
      });
    } catch (err) {
      if (err instanceof HttpExchangeError && err.code === 'ETOOLARGE') {
        throw new SrcError(`${label(url)} is larger than ${options.maxBytes} bytes`);
      }
      const message = (err as Error).message;
      const why = message.startsWith(`${label(target)}: `) ? message.slice(label(target).length + 2) : message;
      throw new SrcError(`fetching ${label(target)} failed: ${why}`);
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
