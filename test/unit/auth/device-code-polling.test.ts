import assert from 'node:assert/strict';
import type { INetworkModule, NetworkResponse } from '@azure/msal-node';
import { DeviceCodePolling } from '../../../src/auth/oauth/device-code-polling.js';
import { FakeClock } from './fake-clock.js';

type Answer = NetworkResponse<Record<string, unknown>>;

const TOKEN_URL = 'https://idp.test/contoso/oauth2/v2.0/token';
const DEVICE_CODE_GRANT = 'grant_type=urn:ietf:params:oauth:grant-type:device_code&device_code=abc';

/** A provider whose token answers the test hands out one at a time. */
function heldNetwork(): { network: INetworkModule; requests: number; answer(body: Record<string, unknown>): void } {
  const waiting: Array<(answer: Answer) => void> = [];
  const held = {
    requests: 0,
    network: {
      sendGetRequestAsync: () => Promise.reject(new Error('no GET expected')),
      sendPostRequestAsync: () => {
        held.requests += 1;
        return new Promise<Answer>((resolve) => waiting.push(resolve));
      },
    } as unknown as INetworkModule,
    answer(body: Record<string, unknown>) {
      const next = waiting.shift();
      assert.ok(next, 'a request waits for its answer');
      next({ status: 200, headers: {}, body });
    },
  };
  return held;
}

describe('device-code polling', () => {
  it('drops a success that arrives after the flow was cancelled (a newer Get Code replaced it)', async () => {
    const provider = heldNetwork();
    const abort = new AbortController();
    const polling = new DeviceCodePolling(provider.network, {
      clock: new FakeClock(),
      signal: abort.signal,
      maxLifetimeMs: 900_000,
    });
    const result = polling.sendPostRequestAsync<Record<string, unknown>>(TOKEN_URL, { body: DEVICE_CODE_GRANT });
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(provider.requests, 1, 'the poll is on its way');
    abort.abort();
    provider.answer({ access_token: 'old-attempt-token', refresh_token: 'r', token_type: 'Bearer', expires_in: 3600 });
    const answer = await result;
    assert.equal(answer.status, 400);
    assert.equal(answer.body.error, 'mailroom_cancelled', 'msal-node never sees the old attempt’s tokens');
  });
});
