import assert from 'node:assert/strict';
import { normalizeAddress } from '../../../src/inbound/message/addresses.js';
import {
  asciiDomainAddress,
  canonicalMailAddress,
  isMailAddress,
  mailAddressKey,
  needsSmtpUtf8,
} from '../../../src/shared/mail-address.js';

describe('shared/mail-address', () => {
  it('stores an address in one form: NFC, the domain in Unicode, the local part as written', () => {
    const forms = ['info@bücher.example', 'info@Bücher.Example', 'info@xn--bcher-kva.example', 'info@BÜCHER.EXAMPLE'];
    for (const form of forms) assert.equal(canonicalMailAddress(form), 'info@bücher.example', form);
    // A decomposed ü (u + U+0308) is the same letter.
    assert.equal(canonicalMailAddress('info@bu\u0308cher.example'), 'info@bücher.example');
    assert.equal(canonicalMailAddress('Jose\u0301@example.com'), 'José@example.com');
    assert.equal(canonicalMailAddress('Support@Example.COM'), 'Support@example.com');
  });

  it('compares by a key that is the inbound routing form (lower-case, punycode domain)', () => {
    const cases = [
      'info@bücher.example',
      'Info@xn--bcher-kva.example',
      'JOSÉ@bücher.example',
      'jose\u0301@bücher.example',
    ];
    for (const address of cases) {
      assert.equal(mailAddressKey(address), normalizeAddress(address), address);
    }
    assert.equal(mailAddressKey('Info@Bücher.example'), 'info@xn--bcher-kva.example');
    assert.equal(mailAddressKey('José@bücher.example'), mailAddressKey('jose\u0301@xn--bcher-kva.example'));
  });

  it('accepts Unicode local parts and domains, and refuses what is no address', () => {
    for (const ok of [
      'info@bücher.example',
      'josé@bücher.example',
      '用户@例え.テスト',
      'a.b+c@example.com',
      "o'neil@example.com",
    ]) {
      assert.equal(isMailAddress(ok), true, ok);
    }
    for (const bad of [
      'info',
      '@example.com',
      'info@',
      'info@localhost',
      'a..b@example.com',
      '.a@example.com',
      'a b@example.com',
      'a@b@example.com',
      '"quoted"@example.com',
      'Name <a@example.com>',
      'a@-bad.example',
      'a@xn--zz.example',
      'a\u0085@example.com',
      `${'x'.repeat(65)}@example.com`,
    ]) {
      assert.equal(isMailAddress(bad), false, bad);
    }
  });

  it('gives the punycode form for a server without SMTPUTF8 and says when a local part needs it', () => {
    assert.equal(asciiDomainAddress('info@bücher.example'), 'info@xn--bcher-kva.example');
    assert.equal(asciiDomainAddress('josé@bücher.example'), 'josé@xn--bcher-kva.example');
    assert.equal(needsSmtpUtf8('info@bücher.example'), false);
    assert.equal(needsSmtpUtf8('josé@example.com'), true);
  });
});
