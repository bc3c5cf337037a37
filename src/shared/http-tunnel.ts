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
      host: proxy.hostname,
      port: proxy.port || '80',
      method: 'CONNECT',
      path: authority,
      headers,
      timeout: timeoutMs,
    });
    req.once('connect', (res, socket) => {
      if (res.statusCode === 200) return resolve(socket);
      socket.destroy();
      reject(
        Object.assign(
          new Error(`the proxy ${proxy.host} refused a tunnel to ${authority} (HTTP ${res.statusCode ?? 0})`),
          {
            code: 'EPROXY',
          },
        ),
      );
    });
    req.once('timeout', () =>
      req.destroy(Object.assign(new Error(`the proxy ${proxy.host} did not answer in time`), { code: 'ETIMEDOUT' })),
    );
    req.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        Object.assign(new Error(`the proxy ${proxy.host} cannot be reached: ${err.message}`), {
          code: err.code ?? 'EPROXY',
        }),
      ),
    );
    req.end();
  });
}
