import {
  Agent as HttpAgent,
  request as httpRequest,
  type ClientRequest,
  type IncomingMessage,
  type RequestOptions,
} from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { isIP, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { checkHost, firstRefused, policyLookup } from './address-lookup.js';
import type { AddressPolicy } from './address-policy.js';
import { openHttpTunnel, proxyAuthorization } from './http-tunnel.js';
import { webProxyFor, type WebProxy } from './web-proxy.js';

/** One HTTP(S) request of the engine's own (identity provider, webhooks, remote Src). */
export interface HttpRequest {
  /** [GET] */
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
  /** Budget of the whole exchange (proxy tunnel, connection, answer and body), ms. */
  timeoutMs: number;
  /** Largest answer body; a longer one fails the exchange (ETOOLARGE), or is cut there with `truncate`. */
  maxBytes: number;
  /** [false] keep the first `maxBytes` of a longer body instead of failing. */
  truncate?: boolean;
  /**
   * [false] read the body and drop it (the caller needs the status alone): up to `maxBytes`, so
   * that the kept-alive connection can carry the next request; a longer body closes the
   * connection. The answer's `body` is empty.
   */
  discardBody?: boolean;
  /** Through this proxy (HTTP CONNECT; TLS to the server stays end to end), unless it bypasses the host. */
  proxy?: WebProxy | undefined;
  /** Extra CA certificates (PEM) trusted for this request alone; verification always stays on. */
  ca?: string | string[] | undefined;
  /**
   * The addresses the request may reach (webhooks, remote Src: URLs the engine is handed, not
   * its own settings); any when absent. A refused one fails the exchange with EADDRNOTALLOWED
   * before a connection is made.
   */
  addresses?: AddressPolicy | undefined;
}

/** Any HTTP answer, whatever its status (redirects are not followed here). */
export interface HttpAnswer {
  status: number;
  /** Header names in lower case; repeated headers joined with `, `. */
  headers: Record<string, string>;
  body: Buffer;
}

/**
 * No answer: `code` is ETIMEDOUT, ETOOLARGE, EPROXY or the socket's own (ECONNREFUSED, …);
 * `atProxy` when it was the proxy that refused or could not be reached (the message says so).
 */
export class HttpExchangeError extends Error {
  constructor(
    message: string,
    readonly code: string,
    readonly atProxy = false,
  ) {
    super(message);
    this.name = 'HttpExchangeError';
  }
}

function answerHeaders(res: IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(res.headers)) {
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return headers;
}

/** The answer; its headers are copied only when read (a webhook POST reads the status alone). */
function answerOf(res: IncomingMessage, body: Buffer): HttpAnswer {
  let headers: Record<string, string> | undefined;
  return {
    status: res.statusCode ?? 0,
    get headers(): Record<string, string> {
      headers ??= answerHeaders(res);
      return headers;
    },
    body,
  };
}

const EMPTY = Buffer.alloc(0);

/** Where a direct request goes, as node:http's options: made once per URL object (a webhook run posts to one URL thousands of times). */
const targets = new WeakMap<URL, RequestOptions>();

function targetOf(url: URL): RequestOptions {
  let target = targets.get(url);
  if (!target) {
    // What node:http takes from a URL given as its first argument (url.urlToHttpOptions).
    target = {
      protocol: url.protocol,
      hostname: url.hostname.replace(/^\[(.*)\]$/, '$1'),
      path: `${url.pathname}${url.search}`,
      ...(url.port !== '' && { port: Number(url.port) }),
      ...((url.username || url.password) && {
        auth: `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`,
      }),
    };
    targets.set(url, target);
  }
  return target;
}

/**
 * Keep-alive agents whose every socket was connected through the policy's lookup: a socket made
 * without the check (another caller's, on the global agent) is never reused for a checked request.
 */
const policyAgents = new WeakMap<AddressPolicy, { http: HttpAgent; https: HttpsAgent }>();

function agentsOf(policy: AddressPolicy): { http: HttpAgent; https: HttpsAgent } {
  let agents = policyAgents.get(policy);
  if (!agents) {
    const lookup = policyLookup(policy);
    agents = { http: new HttpAgent({ keepAlive: true, lookup }), https: new HttpsAgent({ keepAlive: true, lookup }) };
    policyAgents.set(policy, agents);
  }
  return agents;
}

/**
 * Refuses a target the address policy does not allow, before anything is sent. Directly, an IP
 * address is checked here (a socket does not look one up) and a name by the agents' lookup as
 * the socket connects. Through the proxy, the proxy resolves the name and makes the connection,
 * and is the operator's own egress point (its address is never checked: it is commonly a private
 * one); what can be checked here is the target: an IP address, and a name by resolving it here
 * too. A name this machine cannot resolve (networks where only the proxy resolves outside names)
 * is left to the proxy, whose own rules are then what keeps internal addresses out.
 */
function checkTarget(
  policy: AddressPolicy,
  hostname: string,
  proxied: boolean,
  label: string,
  timeoutMs: number,
): Promise<void> | undefined {
  if (!proxied) {
    // Directly, a name is checked by the agents' lookup as the socket connects; an IP address
    // (which a socket does not look up) is judged here, synchronously: no resolution to wait for.
    if (isIP(hostname) === 0) return;
    const refused = firstRefused(policy, hostname, [hostname]);
    if (refused) throw new HttpExchangeError(`${label}: ${refused.message}`, refused.code);
    return;
  }
  return checkThroughProxy(policy, hostname, label, timeoutMs);
}

/** Through the proxy: the target's name resolved here (bounded by the request's budget) and judged. */
async function checkThroughProxy(
  policy: AddressPolicy,
  hostname: string,
  label: string,
  timeoutMs: number,
): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new HttpExchangeError(`no answer from ${label} in ${timeoutMs} ms`, 'ETIMEDOUT')),
      timeoutMs,
    );
  });
  try {
    const { refused } = await Promise.race([checkHost(policy, hostname), timeout]);
    if (refused) throw new HttpExchangeError(`${label}: ${refused.message}`, refused.code);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Sends one request with node:http(s) and reads the whole answer, bounded in time and size.
 * Unlike the global `fetch`, it can go through the configured proxy and trust a private CA for
 * this request alone. Messages name the URL without its query, which may hold a secret.
 */
export async function httpExchange(url: URL, req: HttpRequest): Promise<HttpAnswer> {
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new HttpExchangeError(`${url.protocol} URLs are not supported`, 'EPROTOCOL');
  }
  const label = `${url.origin}${url.pathname}`;
  const secure = url.protocol === 'https:';
  const hostname = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const started = Date.now();
  const proxy = webProxyFor(req.proxy, url);
  // https goes through a tunnel (TLS end to end); plain http is handed to the proxy to forward,
  // as proxies expect (many allow CONNECT to the TLS ports only).
  const forwarding = proxy !== undefined && !secure;
  if (req.addresses) {
    const checked = checkTarget(req.addresses, hostname, proxy !== undefined, label, req.timeoutMs);
    if (checked) await checked;
  }
  let tunnel: Socket | undefined;
  if (proxy && secure) {
    try {
      tunnel = await openHttpTunnel(proxy, hostname, Number(url.port || 443), req.timeoutMs);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      throw new HttpExchangeError(e.message, e.code ?? 'EPROXY', true);
    }
  }
  const headers: Record<string, string> = { ...req.headers };
  if (req.body !== undefined) headers['content-length'] = String(Buffer.byteLength(req.body));
  if (forwarding) {
    headers.host = url.host;
    const authorization = proxyAuthorization(proxy);
    if (authorization) headers['proxy-authorization'] = authorization;
    // The site's own credentials in the URL go as the request's, as node:http sends them directly.
    const site = proxyAuthorization(url);
    if (site && headers.authorization === undefined) headers.authorization = site;
  }
  const options: RequestOptions & { ca?: string | string[] } = {
    method: req.method ?? 'GET',
    headers,
    ...(forwarding && {
      host: proxy.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: proxy.port || '80',
      // The absolute form of the target, without credentials (they never go to the proxy).
      path: `${url.origin}${url.pathname}${url.search}`,
    }),
    ...(secure && req.ca !== undefined && { ca: req.ca }),
    ...(req.addresses && !proxy && { agent: secure ? agentsOf(req.addresses).https : agentsOf(req.addresses).http }),
    ...(tunnel && {
      createConnection: () =>
        secure
          ? tlsConnect({
              socket: tunnel,
              // The name the certificate must show (without it, the proxy's host would be checked).
              host: hostname,
              ...(isIP(hostname) === 0 && { servername: hostname }),
              ...(req.ca !== undefined && { ca: req.ca }),
            })
          : tunnel,
    }),
  };
  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (err: HttpExchangeError): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      client.destroy();
      tunnel?.destroy();
      reject(err);
    };
    const onAnswer = (res: IncomingMessage): void => {
      if (forwarding && res.statusCode === 407) {
        res.resume();
        fail(
          new HttpExchangeError(
            `the proxy ${proxy.host} refused to forward to ${url.host} (HTTP 407: check the user name and password in the proxy URL)`,
            'EPROXY',
            true,
          ),
        );
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      const finish = (): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(answerOf(res, chunks.length === 0 ? EMPTY : Buffer.concat(chunks)));
      };
      res.on('data', (chunk: Buffer) => {
        if (req.discardBody) {
          size += chunk.length;
          if (size > req.maxBytes) {
            finish();
            client.destroy();
          }
        } else if (size + chunk.length <= req.maxBytes) {
          size += chunk.length;
          chunks.push(chunk);
        } else if (req.truncate) {
          chunks.push(chunk.subarray(0, req.maxBytes - size));
          finish();
          client.destroy();
        } else {
          fail(new HttpExchangeError(`${label} is larger than ${req.maxBytes} bytes`, 'ETOOLARGE'));
        }
      });
      res.once('error', (err: NodeJS.ErrnoException) =>
        fail(new HttpExchangeError(`${label}: ${err.message}`, err.code ?? 'ECONNRESET')),
      );
      res.once('end', finish);
    };
    const client: ClientRequest = forwarding
      ? httpRequest(options, onAnswer)
      : (secure ? httpsRequest : httpRequest)({ ...targetOf(url), ...options }, onAnswer);
    let reachedProxy = false;
    if (forwarding) {
      client.once('socket', (socket: Socket) => {
        // A kept-alive socket is connected already; a new one says when it is.
        if (!socket.connecting) reachedProxy = true;
        else socket.once('connect', () => (reachedProxy = true));
      });
    }
    const timer = setTimeout(
      () => fail(new HttpExchangeError(`no answer from ${label} in ${req.timeoutMs} ms`, 'ETIMEDOUT')),
      Math.max(1, req.timeoutMs - (Date.now() - started)),
    );
    client.once('error', (err: NodeJS.ErrnoException) => {
      if (forwarding && !reachedProxy) {
        fail(
          new HttpExchangeError(
            `the proxy ${proxy.host} cannot be reached: ${err.message}`,
            err.code ?? 'EPROXY',
            true,
          ),
        );
      } else {
        fail(new HttpExchangeError(`${label}: ${err.message}`, err.code ?? 'ECONNRESET'));
      }
    });
    client.end(req.body);
  });
}
