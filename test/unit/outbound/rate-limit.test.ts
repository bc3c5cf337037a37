import assert from 'node:assert/strict';
import { nextPlaceAt, nextSendAllowedAt, PLACE_HOLD_MS, RATE_WINDOW_MS } from '../../../src/outbound/rate-limit.js';

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

describe('rate limit places taken before a send', () => {
  const now = 10 * RATE_WINDOW_MS;
  const at = (ms: number): Date => new Date(ms);

  it('counts a place not recorded yet as a send now', () => {
    const lines = [
      { sentAt: at(now - 50 * 60_000), recorded: true },
      { sentAt: at(now - 2 * 60 * 60_000), recorded: true }, // outside the hour
      { sentAt: at(now - 1000), recorded: false },
    ];
    assert.equal(nextPlaceAt(lines, 3, now), now);
    assert.equal(nextPlaceAt(lines, 2, now), now + 10 * 60_000);
    // The limit of one is held by the place: the next check comes an hour on at the earliest.
    assert.equal(nextPlaceAt(lines.slice(2), 1, now), now + RATE_WINDOW_MS);
  });

  it('counts a place left behind by a stopped engine for an hour after its hold', () => {
    const takenAt = now - PLACE_HOLD_MS - 30 * 60_000;
    const lines = [{ sentAt: at(takenAt), recorded: false }];
    // It counts as a send at takenAt + hold, half an hour ago: it blocks a limit of 1 for half an hour more.
    assert.equal(nextPlaceAt(lines, 1, now), takenAt + PLACE_HOLD_MS + RATE_WINDOW_MS);
    assert.equal(
      nextPlaceAt(lines, 1, takenAt + PLACE_HOLD_MS + RATE_WINDOW_MS + 1),
      takenAt + PLACE_HOLD_MS + RATE_WINDOW_MS + 1,
    );
  });

  it('never lets two engines sharing the log send more than the limit in any hour (simulated)', () => {
    // Two engines take places in turn; each send is recorded a little after its place was taken.
    const limit = 5;
    const log: Array<{ sentAt: Date; recorded: boolean; id: number }> = [];
    const sent: number[] = [];
    let t = 0;
    for (let id = 0; sent.length < 20; id += 1) {
      t += 7_000;
      const allowedAt = nextPlaceAt(log, limit, t);
      if (allowedAt > t) {
        t = allowedAt;
        continue;
      }
      log.push({ sentAt: at(t), recorded: false, id });
      // The other engine's place is recorded only later: the next check sees it unrecorded.
      const previous = log.find((l) => !l.recorded && l.id !== id);
      if (previous) {
        previous.recorded = true;
        previous.sentAt = at(previous.sentAt.getTime() + 3_000);
        sent.push(previous.sentAt.getTime());
      }
    }
    for (const start of sent) {
      const inWindow = sent.filter((s) => s >= start && s < start + RATE_WINDOW_MS).length;
      assert.ok(inWindow <= limit, `window from ${start}: ${inWindow}`);
    }
  });
});
