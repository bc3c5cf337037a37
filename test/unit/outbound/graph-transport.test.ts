import assert from 'node:assert/strict';
import { GraphError } from '../../../src/shared/graph/graph-client.js';
import { classifyDeliveryError } from '../../../src/outbound/delivery-error.js';
import { withEnvelopeRecipients } from '../../../src/outbound/graph-transport.js';
import { headerAddresses } from '../../../src/shared/graph/mime-recipients.js';

const RAW = Buffer.from(
  'From: Desk <desk@contoso.test>\r\nTo: "A, B" <a@example.net>,\r\n c@example.net\r\nCc: D <D@Example.net>\r\nSubject: x\r\n\r\nTo: not-a-header@example.net\r\n',
);

const graphError = (status: number, retryAfterMs: number | null = null): GraphError =>
  new GraphError('failed', status, 'Code', retryAfterMs, `Graph ${status} Code`);

describe('sending through Microsoft Graph', () => {
  it('reads the recipients of the headers only (folded lines, display names, any case)', () => {
    assert.deepEqual([...headerAddresses(RAW)], ['a@example.net', 'c@example.net', 'd@example.net']);
  });

  it('names envelope-only recipients in a Bcc header, and leaves a message naming them all as it is', () => {
    assert.equal(withEnvelopeRecipients(RAW, ['a@example.net', 'D@example.net']), RAW);
    const out = withEnvelopeRecipients(RAW, ['a@example.net', 'boss@example.net']).toString('utf8');
    assert.ok(out.startsWith('Bcc: boss@example.net\r\nFrom: Desk'), out);
  });

  it('classifies Graph answers as the SMTP queue does, keeping Retry-After', () => {
    assert.equal(classifyDeliveryError(graphError(401)).kind, 'auth');
    assert.equal(classifyDeliveryError(graphError(403)).kind, 'auth');
    const throttled = classifyDeliveryError(graphError(429, 4000));
    assert.equal(throttled.kind, 'unreachable');
    assert.equal(throttled.retryAfterMs, 4000);
    assert.equal(throttled.throttled, true);
    assert.equal(classifyDeliveryError(graphError(503)).kind, 'unreachable');
    assert.equal(classifyDeliveryError(graphError(500)).kind, 'transient');
    assert.equal(classifyDeliveryError(graphError(400)).kind, 'permanent');
    assert.equal(classifyDeliveryError(graphError(400)).retryAfterMs, undefined);
  });
});
