import assert from 'node:assert/strict';
import { classifyDeliveryError, certainlyNotDelivered } from '../../../src/outbound/delivery-error.js';
import { envelopeFor, offersSmtpUtf8, SMTPUTF8_REQUIRED } from '../../../src/outbound/smtp-envelope.js';

describe('outbound/smtp-envelope', () => {
  it('reads SMTPUTF8 from an EHLO reply', () => {
    assert.equal(offersSmtpUtf8('250-mx.example Hello\n250-PIPELINING\n250-SMTPUTF8\n250 8BITMIME'), true);
    assert.equal(offersSmtpUtf8('250-mx.example Hello\n250 SMTPUTF8'), true);
    assert.equal(offersSmtpUtf8('250-mx.example Hello\n250-PIPELINING\n250 8BITMIME'), false);
    assert.equal(offersSmtpUtf8('250-mx.example SMTPUTF8-less\n250 8BITMIME'), false);
    assert.equal(offersSmtpUtf8(false), false);
  });

  it('keeps Unicode for a server with SMTPUTF8, writes punycode domains for one without', () => {
    const envelope = { from: 'info@bücher.example', to: ['josé@例え.テスト', 'a@example.com'] };
    assert.deepEqual(envelopeFor(envelope, true, 'mx'), envelope);
    assert.deepEqual(
      envelopeFor({ from: 'info@bücher.example', to: ['kunde@münchen.de', 'a@example.com'] }, false, 'mx'),
      { from: 'info@xn--bcher-kva.example', to: ['kunde@xn--mnchen-3ya.de', 'a@example.com'] },
    );
  });

  it('refuses a Unicode local part for a server without SMTPUTF8, naming it, as a permanent failure', () => {
    let caught: unknown;
    try {
      envelopeFor({ from: 'info@example.com', to: ['a@example.com', 'josé@bücher.example'] }, false, 'mx.example');
    } catch (err) {
      caught = err;
    }
    const err = caught as Error & { code?: string };
    assert.equal(err.code, SMTPUTF8_REQUIRED);
    assert.match(err.message, /mx\.example does not offer SMTPUTF8, which josé@bücher\.example needs/);
    assert.equal(classifyDeliveryError(err).kind, 'permanent');
    assert.equal(certainlyNotDelivered(err), true);
  });
});
