import assert from 'node:assert/strict';
import { describeStatus, shownError, webhookStatusView } from '../../../../src/inbound/webhooks/views.js';
import type { WebhookDeliveryRow } from '../../../../src/store/webhook-deliveries.js';

function headRow(attempts: number): WebhookDeliveryRow {
  const at = new Date('2026-05-01T10:00:00Z');
  return {
    destinationId: 'd',
    seq: 1,
    tenantId: 't',
    messageId: 'm',
    attempts,
    nextAttemptAt: at,
    leaseUntil: null,
    lastAttemptAt: attempts > 0 ? at : null,
    lastStatus: attempts > 0 ? 500 : null,
    lastError: attempts > 0 ? 'HTTP 500' : null,
    lastErrorAt: attempts > 0 ? at : null,
    deliveredAt: null,
    createdAt: at,
  };
}

describe('webhook failures as tenants see them', () => {
  it('names the status and its kind', () => {
    assert.equal(describeStatus(500), 'HTTP 500 (server error)');
    assert.equal(describeStatus(503), 'HTTP 503 (service unavailable)');
    assert.equal(describeStatus(418), 'HTTP 418 (client error)');
    assert.equal(describeStatus(404), 'HTTP 404 (not found)');
    assert.equal(describeStatus(302), 'HTTP 302 (redirect, not followed)');
  });

  it("never shows a receiver's answer, also one stored by an earlier version", () => {
    assert.equal(shownError('HTTP 500: <html>internal admin page</html>'), 'HTTP 500 (server error)');
    assert.equal(shownError('HTTP 502'), 'HTTP 502 (bad gateway)');
    assert.equal(shownError('timed out'), 'timed out');
    assert.equal(shownError('address not allowed'), 'address not allowed');
  });

  it('says retrying as soon as the oldest pending event failed once, failing after too many attempts', () => {
    const view = (
      attempts: number | null,
      failing = false,
      url: string | null = 'https://hooks.example/in',
    ): string => {
      const head = attempts === null ? null : headRow(attempts);
      const summary = { pending: head ? 1 : 0, delivered: 0, lastDeliveredAt: null, head };
      return webhookStatusView({ id: 'd', webhookUrl: url }, summary, [], failing).state;
    };
    assert.equal(view(null), 'ok');
    assert.equal(view(0), 'ok', 'pending, not tried yet');
    assert.equal(view(1), 'retrying');
    assert.equal(view(7), 'retrying');
    assert.equal(view(8, true), 'failing');
    assert.equal(view(null, false, null), 'disabled');
  });
});
