import { request, type RequestOptions } from 'node:https';
import { isIP } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { INetworkModule, NetworkRequestOptions, NetworkResponse } from '@azure/msal-node';
import { openHttpTunnel } from '../../shared/http-tunnel.js';

export interface HttpClientOptions {
  /** Extra CA certificates (PEM) to trust for the identity provider; verification always stays on. */
  ca?: string | string[];
  /** [30000] budget of one request, ms. */
  timeoutMs?: number;
  /** An HTTP proxy: each request goes through a tunnel it opens (HTTP CONNECT); TLS stays end to end. */
  proxy?: URL | undefined;
}

const MAX_RESPONSE_BYTES = 1_048_576;

/**
 * msal-node's network module on node:https, so a private identity provider's CA can be trusted
 * for these requests alone (never `rejectUnauthorized: false`, never process-wide).
 */
export class HttpClient implements INetworkModule {
  constructor(private readonly options: HttpClientOptions = {}) {}

  sendGetRequestAsync<T>(url: string, options?: NetworkRequestOptions, timeout?: number): Promise<NetworkResponse<T>> {
    return this.send<T>('GET', url, options, timeout);
  }

  sendPostRequestAsync<T>(url: string, options?: NetworkRequestOptions): Promise<NetworkResponse<T>> {
    return this.send<T>('POST', url, options);
  }

  private async send<T>(
    method: 'GET' | 'POST',
    url: string,
    options: NetworkRequestOptions = {},
    timeout?: number,
  ): Promise<NetworkResponse<T>> {
    const body = options.body ?? '';
    const headers: Record<string, string> = { ...options.headers };
    if (method === 'POST') headers['content-length'] = String(Buffer.byteLength(body));
    const budgetMs = timeout ?? this.options.timeoutMs ?? 30_000;
    const target = new URL(url);
    const tunnel = this.options.proxy
      ? await openHttpTunnel(this.options.proxy, target.hostname, Number(target.port || 443), budgetMs)
      : undefined;
    const requestOptions: RequestOptions = {
      method,
      headers,
      ...(this.options.ca !== undefined && { ca: this.options.ca }),
      timeout: budgetMs,
      ...(tunnel && {
        // TLS with the identity provider inside the proxy's tunnel (the proxy sees only ciphertext).
        createConnection: () =>
          tlsConnect({
            socket: tunnel,
            ...(isIP(target.hostname) === 0 && { servername: target.hostname }),
            ...(this.options.ca !== undefined && { ca: this.options.ca }),
          }),
      }),
    };
    return new Promise((resolve, reject) => {
      const req = request(url, requestOptions, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_RESPONSE_BYTES) req.destroy(new Error(`answer of ${url} is too large`));
          else chunks.push(chunk);
        });
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown;
          try {
            parsed = text === '' ? {} : JSON.parse(text);
          } catch {
            reject(new Error(`answer of ${url} is not JSON (HTTP ${res.statusCode ?? 0})`));
            return;
          }
          const responseHeaders: Record<string, string> = {};
          for (const [name, value] of Object.entries(res.headers)) {
            if (value !== undefined) responseHeaders[name] = Array.isArray(value) ? value.join(', ') : value;
          }
          resolve({ status: res.statusCode ?? 0, headers: responseHeaders, body: parsed as T });
        });
      });
      req.on('timeout', () => req.destroy(new Error(`no answer from ${url} in time`)));
      req.on('error', reject);
      req.end(method === 'POST' ? body : undefined);
    });
  }
}
