import type { INetworkModule, NetworkRequestOptions, NetworkResponse } from '@azure/msal-node';
import { httpExchange } from '../../shared/http-exchange.js';
import type { AddressPolicy } from '../../shared/address-policy.js';
import type { WebProxy } from '../../shared/web-proxy.js';

export interface HttpClientOptions {
  /** Extra CA certificates (PEM) to trust for the identity provider; verification always stays on. */
  ca?: string | string[];
  /** [30000] budget of one request, ms. */
  timeoutMs?: number;
  /** An HTTP proxy: each request goes through a tunnel it opens (HTTP CONNECT); TLS stays end to end. */
  proxy?: WebProxy | undefined;
  /** The addresses the identity provider may be at (a tenant chooses the authority host); any when absent. */
  addresses?: AddressPolicy | undefined;
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
    const answer = await httpExchange(new URL(url), {
      method,
      headers: { ...options.headers },
      ...(method === 'POST' && { body: options.body ?? '' }),
      timeoutMs: timeout ?? this.options.timeoutMs ?? 30_000,
      maxBytes: MAX_RESPONSE_BYTES,
      proxy: this.options.proxy,
      ca: this.options.ca,
      addresses: this.options.addresses,
    });
    const text = answer.body.toString('utf8');
    let parsed: unknown;
    try {
      parsed = text === '' ? {} : JSON.parse(text);
    } catch {
      throw new Error(`answer of ${url} is not JSON (HTTP ${answer.status})`);
    }
    return { status: answer.status, headers: answer.headers, body: parsed as T };
  }
}
