import assert from 'node:assert/strict';
import { accountKeyOf, canonicalHost } from '../../../src/shared/host-key.js';

describe('host key: one spelling per host (one account, one tenant)', () => {
  // Every spelling an outside review used to register 127.0.0.1's account again (issue 24), and more.
  const loopback = [
    '127.0.0.1',
    '127.1',
    '0x7f.0.0.1',
    '0x7F.1',
    '127.0.0.01',
    '0177.0.0.1',
    '2130706433',
    '::ffff:127.0.0.1',
    '[::ffff:127.0.0.1]',
    '::FFFF:7f00:1',
    '0:0:0:0:0:ffff:7f00:0001',
    'localhost',
    'LocalHost.',
    'mail.localhost',
    ' 127.0.0.1. ',
  ];
  for (const host of loopback) {
    it(`${JSON.stringify(host)} is 127.0.0.1`, () => assert.equal(canonicalHost(host), '127.0.0.1'));
  }

  const table: [string, string][] = [
    ['2001:DB8:0:0:0:0:0:1', '2001:db8::1'],
    ['2001:db8::0:1', '2001:db8::1'],
    ['[2001:0db8::1]', '2001:db8::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // RFC 5952 4.2.3: the first of equal runs
    ['0:0:0:0:0:0:0:1', '::1'],
    ['::', '::'],
    ['Imap.Example.COM.', 'imap.example.com'],
    ['1.2.3.999', '1.2.3.999'], // no IPv4 in any form: a name as it is
    ['face.b00c', 'face.b00c'],
    ['0xdead.be', '0xdead.be'],
    ['192.0.2.1', '192.0.2.1'],
  ];
  for (const [host, canonical] of table) {
    it(`${JSON.stringify(host)} is ${canonical}`, () => assert.equal(canonicalHost(host), canonical));
  }

  it('an account key is the canonical host and the lower-cased user name', () => {
    assert.equal(accountKeyOf('0x7f.1', ' Agent@Example.COM '), '127.0.0.1\nagent@example.com');
    assert.equal(accountKeyOf('::ffff:127.0.0.1', 'a'), accountKeyOf('localhost', 'A'));
    assert.notEqual(accountKeyOf('127.0.0.2', 'a'), accountKeyOf('127.0.0.1', 'a'));
  });
});
