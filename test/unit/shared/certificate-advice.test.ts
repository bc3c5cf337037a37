import assert from 'node:assert/strict';
import { certificateAdvice, untrustedIssuerCode } from '../../../src/shared/certificate-advice.js';

describe('certificate advice', () => {
  it('finds an untrusted issuer in the code, nodemailer’s originalCode or the cause', () => {
    const selfSigned = Object.assign(new Error('self-signed certificate'), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' });
    assert.equal(untrustedIssuerCode(selfSigned), 'DEPTH_ZERO_SELF_SIGNED_CERT');
    assert.equal(
      untrustedIssuerCode({ code: 'ETLS', originalCode: 'SELF_SIGNED_CERT_IN_CHAIN' }),
      'SELF_SIGNED_CERT_IN_CHAIN',
    );
    assert.equal(
      untrustedIssuerCode({ code: 'ESOCKET', cause: { code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' } }),
      'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
    );
    for (const other of [{ code: 'ECONNREFUSED' }, { code: 'CERT_HAS_EXPIRED' }, null, 'text']) {
      assert.equal(untrustedIssuerCode(other), undefined);
    }
  });

  it('names the side’s CA field and the CA directory, or doubts the file already set', () => {
    const err = Object.assign(new Error('self-signed certificate'), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' });
    assert.match(String(certificateAdvice(err, 'smtp.caFile', null)), /not trusted.*'smtp\.caFile'.*MAILROOM_CA_DIR/);
    assert.match(
      String(certificateAdvice(err, 'imap.caFile', '/ca/x.pem')),
      /not trusted by 'imap\.caFile' \(\/ca\/x\.pem\)/,
    );
    assert.equal(certificateAdvice(new Error('timeout'), 'smtp.caFile', null), undefined);
  });
});
