import assert from 'node:assert/strict';
import { describeStatus, shownError } from '../../../../src/inbound/webhooks/views.js';

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
});
