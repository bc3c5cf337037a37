import type { INetworkModule, NetworkRequestOptions, NetworkResponse } from '@azure/msal-node';
import type { Clock } from '../../shared/clock.js';

/** RFC 8628 section 3.5: after `slow_down` the interval grows by five seconds, for good. */
export const SLOW_DOWN_STEP_MS = 5_000;
const DEFAULT_INTERVAL_MS = 5_000;

export interface DeviceCodePollingOptions {
  clock: Clock;
  /** Aborting ends the polling at once (a newer request replaced this flow, or the engine stops). */
  signal: AbortSignal;
  /** Longest the code is polled for, ms, however long the provider says it lives. */
  maxLifetimeMs: number;
  /** Called at each `authorization_pending`: a person has yet to enter the code. */
  onPending?: () => void;
}

type Answer = NetworkResponse<Record<string, unknown>>;

function localError(error: string, description: string): Answer {
  return { status: 400, headers: {}, body: { error, error_description: description } };
}

function isDeviceCodeGrant(body: string | undefined): boolean {
  const grant = new URLSearchParams(body ?? '').get('grant_type') ?? '';
  return grant === 'device_code' || grant === 'urn:ietf:params:oauth:grant-type:device_code';
}

/**
 * The network module of one device-code sign-in. msal-node polls with its own timer and treats
 * `slow_down` as fatal; here the token request of the device-code grant is answered only once the
 * provider gives a final answer: this object waits between polls on the injected clock, at the
 * provider's interval, five seconds longer after each `slow_down`, and stops at the code's expiry
 * (`expired_token`) or when aborted (`mailroom_cancelled`). Every other request passes through.
 */
export class DeviceCodePolling implements INetworkModule {
  private intervalMs = DEFAULT_INTERVAL_MS;
  private expiresAt = Number.POSITIVE_INFINITY;
  /** Waits asked of the clock, in order (ms). */
  readonly waits: number[] = [];

  constructor(
    private readonly inner: INetworkModule,
    private readonly options: DeviceCodePollingOptions,
  ) {}

  get pollIntervalMs(): number {
    return this.intervalMs;
  }

  /** When the code stops being polled (clock ms); infinite before the code is issued. */
  get expiresAtMs(): number {
    return this.expiresAt;
  }

  sendGetRequestAsync<T>(url: string, options?: NetworkRequestOptions, timeout?: number): Promise<NetworkResponse<T>> {
    return this.inner.sendGetRequestAsync<T>(url, options, timeout);
  }

  async sendPostRequestAsync<T>(url: string, options?: NetworkRequestOptions): Promise<NetworkResponse<T>> {
    if (new URL(url).pathname.endsWith('/devicecode')) {
      const answer = await this.inner.sendPostRequestAsync<Record<string, unknown>>(url, options);
      this.noteDeviceCode(answer);
      return answer as NetworkResponse<T>;
    }
    if (isDeviceCodeGrant(options?.body)) return (await this.poll(url, options)) as NetworkResponse<T>;
    return this.inner.sendPostRequestAsync<T>(url, options);
  }

  private noteDeviceCode(answer: Answer): void {
    if (answer.status !== 200) return;
    const { interval, expires_in: expiresIn } = answer.body;
    if (typeof interval === 'number' && interval > 0) this.intervalMs = interval * 1000;
    const lifetimeMs =
      typeof expiresIn === 'number' && expiresIn > 0
        ? Math.min(expiresIn * 1000, this.options.maxLifetimeMs)
        : this.options.maxLifetimeMs;
    this.expiresAt = this.options.clock.now() + lifetimeMs;
  }

  private async poll(url: string, options?: NetworkRequestOptions): Promise<Answer> {
    const { clock, signal } = this.options;
    for (;;) {
      if (signal.aborted) return localError('mailroom_cancelled', 'the sign-in was cancelled');
      if (clock.now() >= this.expiresAt) {
        return localError('expired_token', 'the device code expired before anyone entered it');
      }
      const answer = await this.inner.sendPostRequestAsync<Record<string, unknown>>(url, options);
      // Cancelled while the provider answered (a newer Get Code replaced this flow, or the server
      // changed): even a success must not reach msal-node, which would save its tokens.
      if (signal.aborted) return localError('mailroom_cancelled', 'the sign-in was cancelled');
      const error = answer.body?.error;
      if (error === 'authorization_pending') {
        this.options.onPending?.();
      } else if (error === 'slow_down') {
        this.intervalMs += SLOW_DOWN_STEP_MS;
      } else {
        return answer;
      }
      await this.wait(Math.max(0, Math.min(this.intervalMs, this.expiresAt - clock.now())));
    }
  }

  private wait(ms: number): Promise<void> {
    const { clock, signal } = this.options;
    this.waits.push(ms);
    return new Promise((resolve) => {
      const done = (): void => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      };
      const handle = clock.setTimeout(done, ms);
      const onAbort = (): void => {
        clock.clearTimeout(handle);
        done();
      };
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }
}
