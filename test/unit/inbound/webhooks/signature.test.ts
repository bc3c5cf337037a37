import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { signPayload, verifySignature } from '../../../../src/inbound/webhooks/signature.js';

describe('webhook signature', () => {
  const secret = 'whsec-known-key-0123456789';
  const body = '{"type":"message.routed","id":"d:1"}';
  const timestamp = 1_767_600_000;

  it('is HMAC-SHA256 over "<timestamp>.<body>" in hex, prefixed sha256=', () => {
    // Computed independently: printf '%s' '1767600000.{...}' | openssl dgst -sha256 -hmac <secret>
    const expected = createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
    assert.equal(signPayload(secret, timestamp, body), `sha256=${expected}`);
    assert.equal(signPayload('key', 0, ''), 'sha256=' + createHmac('sha256', 'key').update('0.').digest('hex'));
  });

  it('verifies a fresh signature and refuses a changed body, key, timestamp or a replay after the tolerance', () => {
    const signature = signPayload(secret, timestamp, body);
    const base = { secret, body, timestamp: String(timestamp), signature, nowSeconds: timestamp + 10 };
    assert.equal(verifySignature(base), true);
    assert.equal(verifySignature({ ...base, body: body.replace('1', '2') }), false);
    assert.equal(verifySignature({ ...base, secret: `${secret}x` }), false);
    assert.equal(verifySignature({ ...base, timestamp: String(timestamp + 1) }), false);
    assert.equal(verifySignature({ ...base, nowSeconds: timestamp + 301 }), false);
    assert.equal(verifySignature({ ...base, signature: undefined }), false);
    assert.equal(verifySignature({ ...base, timestamp: 'soon' }), false);
  });
});
