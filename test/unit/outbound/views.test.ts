import assert from 'node:assert/strict';
import { waitingOf } from '../../../src/outbound/views.js';

describe('outbound views: why a message waits', () => {
  const now = Date.parse('2026-12-07T12:00:00Z');
  const ok = { state: 'ok', resumeAt: null, rateLimitedUntil: null };
  const later = new Date(now + 60_000);

  it('names the hourly limit and when it frees a place, for a message with no retry time of its own', () => {
    const queue = { ...ok, rateLimitedUntil: '2026-12-07T12:40:00.000Z' };
    assert.deepEqual(waitingOf({ status: 'queued', nextAttemptAt: null }, queue, now), {
      waitingFor: 'rate-limit',
      waitingUntil: '2026-12-07T12:40:00.000Z',
    });
  });

  it('names its own retry first, then the limit once the retry time has passed', () => {
    const queue = { ...ok, rateLimitedUntil: '2026-12-07T12:40:00.000Z' };
    assert.deepEqual(waitingOf({ status: 'deferred', nextAttemptAt: later }, queue, now), {
      waitingFor: 'retry',
      waitingUntil: later.toISOString(),
    });
    assert.equal(
      waitingOf({ status: 'deferred', nextAttemptAt: later }, queue, later.getTime() + 1).waitingFor,
      'rate-limit',
    );
  });

  it('names a paused relay or held credentials with the next probe', () => {
    const paused = { state: 'paused', resumeAt: '2026-12-07T12:00:30.000Z', rateLimitedUntil: null };
    assert.deepEqual(waitingOf({ status: 'queued', nextAttemptAt: null }, paused, now), {
      waitingFor: 'relay',
      waitingUntil: '2026-12-07T12:00:30.000Z',
    });
    assert.equal(
      waitingOf({ status: 'queued', nextAttemptAt: null }, { ...paused, state: 'held' }, now).waitingFor,
      'credentials',
    );
  });

  it('says nothing of a message done, one just waiting its turn, or one whose queue is elsewhere', () => {
    const none = { waitingFor: null, waitingUntil: null };
    assert.deepEqual(waitingOf({ status: 'sent', nextAttemptAt: null }, { ...ok, rateLimitedUntil: 'x' }, now), none);
    assert.deepEqual(waitingOf({ status: 'queued', nextAttemptAt: null }, ok, now), none);
    assert.deepEqual(waitingOf({ status: 'queued', nextAttemptAt: null }, null, now), none);
  });
});
