import assert from 'node:assert/strict';
import { nextSendAllowedAt, RATE_WINDOW_MS } from '../../../src/outbound/rate-limit.js';

describe('sliding-hour rate limit', () => {
  it('lets everything through without a limit', () => {
    assert.equal(nextSendAllowedAt([1, 2, 3], 0, 10), 10);
  });

  it('waits until the oldest send in the window leaves it', () => {
    const now = 10 * RATE_WINDOW_MS;
    const sends = [now - 50 * 60_000, now - 30 * 60_000, now - 10 * 60_000];
    assert.equal(nextSendAllowedAt(sends, 4, now), now);
    assert.equal(nextSendAllowedAt(sends, 3, now), now + 10 * 60_000);
    assert.equal(nextSendAllowedAt(sends, 2, now), now + 30 * 60_000);
  });

  it('never allows more than the limit in any hour (simulated)', () => {
    const limit = 30;
    const sends: number[] = [];
    let now = 0;
    while (sends.length < 100) {
      const at = nextSendAllowedAt(sends, limit, now);
      now = Math.max(now + 1000, at);
      sends.push(now);
    }
    for (const start of sends) {
      const inWindow = sends.filter((t) => t >= start && t < start + RATE_WINDOW_MS).length;
      assert.ok(inWindow <= limit, `window from ${start}: ${inWindow}`);
    }
  });
});
