import assert from 'node:assert/strict';
import MimeNode from 'nodemailer/lib/mime-node';
import { normalizeHeaderKeyUncached } from '../../../src/outbound/header-key-cache.js';

const NAMES = [
  'content-type',
  'Content-Type',
  'CONTENT-TRANSFER-ENCODING',
  'mime-version',
  'message-id',
  'x-smtpapi',
  'dkim-signature',
  'otp-token',
  'x-spf',
  'content-features',
  'X-Mailroom-Loop',
  'From: ceo@example.com (',
  ' Subject\r\n',
  '__proto__',
  'constructor',
  '',
];

const cached = (MimeNode.prototype as unknown as { _normalizeHeaderKey: typeof normalizeHeaderKeyUncached })
  ._normalizeHeaderKey;

describe('header name cache', () => {
  it('is installed on MimeNode', () => {
    assert.notEqual(cached, normalizeHeaderKeyUncached);
  });

  it('gives what nodemailer gives, the first time and from the cache', () => {
    for (const name of NAMES) {
      const expected = normalizeHeaderKeyUncached.call(null, name);
      assert.equal(cached.call(null, name), expected, JSON.stringify(name));
      assert.equal(cached.call(null, name), expected, `${JSON.stringify(name)} again`);
    }
    assert.equal(cached.call(null, 'mime-version'), 'MIME-Version');
    assert.equal(cached.call(null, 'From: ceo@example.com ('), 'Fromceo@example.com(');
  });

  it('is what MimeNode uses: a header set under one spelling is found under another', () => {
    const node = new MimeNode('text/plain');
    node.setHeader('x-mailroom-loop', 'one');
    node.setHeader('X-MAILROOM-LOOP', 'two');
    assert.equal(node.getHeader('X-Mailroom-Loop'), 'two');
  });
});
