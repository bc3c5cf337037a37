import assert from 'node:assert/strict';
import { isFailing, retryDelayMs } from '../../../../src/inbound/webhooks/retry-schedule.js';
import { FakeClock } from '../../../support/fake-clock.js';

const options = { retryMinMs: 1_000, retryMaxMs: 60_000, failingAfterAttempts: 5 };

describe('webhook retry schedule', () => {
  it('doubles from the minimum with jitter between half and all of the step, capped', () => {
    const low = (n: number) => retryDelayMs(n, options, () => 0);
    const high = (n: number) => retryDelayMs(n, options, () => 0.999999);
    assert.deepEqual([1, 2, 3, 4].map(low), [500, 1_000, 2_000, 4_000]);
    assert.deepEqual([1, 2, 3, 4].map(high), [1_000, 2_000, 4_000, 8_000]);
    assert.equal(
      retryDelayMs(4, { ...options, retryMaxMs: 3_000 }, () => 0.999999),
      3_000,
    );
  });

  it('after the failing threshold retries at the maximum interval forever and reports failing', () => {
    for (const attempts of [5, 6, 50, 10_000]) {
      assert.equal(
        retryDelayMs(attempts, options, () => 0),
        60_000,
      );
      assert.equal(isFailing(attempts, options), true);
    }
    assert.equal(isFailing(4, options), false);
  });

  it('bounds the attempts per period: at most one per retryMaxMs once failing (fake clock, a day)', () => {
    const clock = new FakeClock();
    let attempts = 0;
    const attempt = (): void => {
      attempts += 1;
      clock.setTimeout(
        attempt,
        retryDelayMs(attempts, options, () => 0.5),
      );
    };
    attempt();
    clock.advance(24 * 3_600_000);
    // 5 quick attempts (about 0.75+1.5+3+6 s), then one a minute for the rest of the day.
    assert.ok(attempts <= 5 + 24 * 60 + 1, `attempts ${attempts}`);
    assert.ok(attempts >= 24 * 60, `attempts ${attempts}`);
  });
});
