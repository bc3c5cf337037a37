import assert from 'node:assert/strict';
import { PLACE_HOLD_MS, RATE_WINDOW_MS } from '../../../src/outbound/rate-limit.js';
import { RateLimitPlaces, type SendLogPlaces } from '../../../src/outbound/rate-limit-places.js';
import type { SendLogEntry } from '../../../src/store/send-log.js';

/** A send log that hands `entries` to the decision and writes down what it was asked to do. */
function sendLogWith(entries: SendLogEntry[]): { log: SendLogPlaces; calls: string[] } {
  const calls: string[] = [];
  const log: SendLogPlaces = {
    async reserve(serverId, outboundId, now, since, decide) {
      const allowedAt = decide(entries);
      const taken = allowedAt <= now.getTime();
      calls.push(`reserve ${serverId} ${outboundId} at ${now.getTime()} since ${since.getTime()}: ${taken}`);
      return allowedAt;
    },
    async settle(outboundId, at) {
      calls.push(`settle ${outboundId} at ${at.getTime()}`);
    },
    async release(outboundId) {
      calls.push(`release ${outboundId}`);
    },
  };
  return { log, calls };
}

describe('rate-limit places (the send log before and after a send)', () => {
  const now = 10 * RATE_WINDOW_MS;
  const recorded = (agoMs: number): SendLogEntry => ({ sentAt: new Date(now - agoMs), recorded: true });
  const place = (agoMs: number): SendLogEntry => ({ sentAt: new Date(now - agoMs), recorded: false });

  it('takes a place while the hour has one, reading the log back far enough for places left behind', async () => {
    const { log, calls } = sendLogWith([recorded(50 * 60_000), place(10 * 60_000)]);
    assert.equal(await new RateLimitPlaces(log).take('srv', 'msg-1', 3, now), now);
    assert.deepEqual(calls, [`reserve srv msg-1 at ${now} since ${now - RATE_WINDOW_MS - PLACE_HOLD_MS}: true`]);
  });

  it('says when the next place frees up when the hour has none, counting places not yet recorded', async () => {
    const { log, calls } = sendLogWith([recorded(50 * 60_000), place(10 * 60_000)]);
    // The place taken 10 minutes ago counts as a send now, while no delivery record replaces it.
    assert.equal(await new RateLimitPlaces(log).take('srv', 'msg-2', 2, now), now + 10 * 60_000);
    assert.equal(await new RateLimitPlaces(log).take('srv', 'msg-2', 1, now), now + RATE_WINDOW_MS);
    assert.deepEqual(
      calls.map((c) => c.endsWith(': false')),
      [true, true],
      'nothing taken',
    );
  });

  it('gives the place back after a failure that surely sent nothing, and counts it as a send otherwise', async () => {
    const { log, calls } = sendLogWith([]);
    const places = new RateLimitPlaces(log);
    const at = new Date(now + 5_000);
    await places.afterFailure('refused', Object.assign(new Error('550 no'), { responseCode: 550 }), at);
    await places.afterFailure('no-connection', Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }), at);
    await places.afterFailure('cut-off', Object.assign(new Error('gone'), { code: 'ECONNRESET' }), at);
    await places.afterFailure('timeout', Object.assign(new Error('slow'), { code: 'ETIMEDOUT' }), at);
    assert.deepEqual(calls, [
      'release refused',
      'release no-connection',
      `settle cut-off at ${at.getTime()}`,
      `settle timeout at ${at.getTime()}`,
    ]);
  });

  it('releases and settles by message', async () => {
    const { log, calls } = sendLogWith([]);
    const places = new RateLimitPlaces(log);
    await places.release('a');
    await places.settle('b', new Date(now));
    assert.deepEqual(calls, ['release a', `settle b at ${now}`]);
  });
});
