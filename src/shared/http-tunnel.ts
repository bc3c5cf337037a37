import { request } from 'node:http';
import type { Socket } from 'node:net';

/**
 * Asks an HTTP proxy for a tunnel to `host:port` (HTTP CONNECT, Basic credentials from the proxy
 * URL when it has them); resolves with the open socket, over which the caller speaks its own
 * protocol (TLS to an identity provider, SMTP, IMAP). Errors name the proxy, never its password.
 */
export function openHttpTunnel(proxy: URL, host: string, port: number, timeoutMs: number): Promise<Socket> {
  const authority = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  const headers: Record<string, string> = { host: authority };
  if (proxy.username !== '') {
    const credentials = `${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`;
    headers['proxy-authorization'] = `Basic ${Buffer.from(credentials).toString('base64')}`;
  }
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
