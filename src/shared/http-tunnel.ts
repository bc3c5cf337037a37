import { request } from 'node:http';
import type { Socket } from 'node:net';

/** Basic credentials of a URL with a user name (a proxy's `Proxy-Authorization`), or undefined. */
export function proxyAuthorization(proxy: URL): string | undefined {
  if (proxy.username === '') return undefined;
  const credentials = `${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`;
  return `Basic ${Buffer.from(credentials).toString('base64')}`;
}

/**
 * Asks an HTTP proxy for a tunnel to `host:port` (HTTP CONNECT, Basic credentials from the proxy
 * URL when it has them); resolves with the open socket, over which the caller speaks its own
 * protocol (TLS to an identity provider, SMTP, IMAP). Errors name the proxy, never its password.
 */
export function openHttpTunnel(proxy: URL, host: string, port: number, timeoutMs: number): Promise<Socket> {
  const authority = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  const headers: Record<string, string> = { host: authority };
  const authorization = proxyAuthorization(proxy);
  if (authorization) headers['proxy-authorization'] = authorization;
  return new Promise((resolve, reject) => {
    const req = request({
      host: proxy.hostname.replace(/^\[(.*)\]$/, '$1'), // an IPv6 address without its URL brackets
      port: proxy.port || '80',
      method: 'CONNECT',
      path: authority,
      headers,
      timeout: timeoutMs,
    });
    let timedOut = false;
    req.once('connect', (res, socket, head) => {
      if (res.statusCode === 200) {
        // Bytes the server sent at once (an SMTP or IMAP greeting) may have come with the answer.
        if (head.length > 0) socket.unshift(head);
        return resolve(socket);
      }
      socket.destroy();
      reject(
        Object.assign(
          new Error(
            `the proxy ${proxy.host} refused a tunnel to ${authority} (HTTP ${res.statusCode ?? 0}` +
              `${res.statusCode === 407 ? ': check the user name and password in the proxy URL' : ''})`,
          ),
          {
            code: 'EPROXY',
          },
        ),
      );
    });
    req.once('timeout', () => {
      timedOut = true;
      req.destroy();
      reject(Object.assign(new Error(`the proxy ${proxy.host} did not answer in time`), { code: 'ETIMEDOUT' }));
    });
    req.once('error', (err: NodeJS.ErrnoException) => {
      if (timedOut) return; // the destroy after the timeout; already answered
      reject(
        Object.assign(new Error(`the proxy ${proxy.host} cannot be reached: ${err.message}`), {
          code: err.code ?? 'EPROXY',
        }),
      );
    });
    req.end();
  });
}
