import assert from 'node:assert/strict';
import type { LookupAddress } from 'node:dns';
import { AddressNotAllowedError, AddressPolicy } from '../../../src/shared/address-policy.js';
import { mailTarget } from '../../../src/shared/mail-target.js';

/** A resolver answering from a table (no DNS), counting its questions. */
function resolver(table: Record<string, string[]>): ((name: string) => Promise<LookupAddress[]>) & { asked: string[] } {
  const asked: string[] = [];
  const resolve = async (name: string): Promise<LookupAddress[]> => {
    asked.push(name);
    const found = table[name];
    if (!found) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${name}`), { code: 'ENOTFOUND' });
    return found.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };
  return Object.assign(resolve, { asked });
}

describe('mail target: where a tenant-chosen IMAP/SMTP host may lead', () => {
  const strict = AddressPolicy.strict();

  it('leaves the operator’s host as it is (no policy, nothing resolved)', async () => {
    const resolve = resolver({});
    assert.deepEqual(await mailTarget('127.0.0.1', undefined, { resolve }), { host: '127.0.0.1' });
    assert.deepEqual(resolve.asked, []);
  });

  it('refuses loopback, private and metadata addresses in every spelling', async () => {
    for (const host of [
      '127.0.0.1',
      '127.1',
      '0x7f.0.0.1',
      '::ffff:127.0.0.1',
      'localhost',
      '169.254.169.254',
      '10.1.2.3',
      '::1',
    ]) {
      await assert.rejects(mailTarget(host, strict, { resolve: resolver({}) }), (err: unknown) => {
        assert.ok(err instanceof AddressNotAllowedError, `${host}: ${String(err)}`);
        assert.equal(err.code, 'EADDRNOTALLOWED');
        return true;
      });
    }
  });

  it('connects to the address it checked, keeping the name for TLS (no second lookup to rebind)', async () => {
    const resolve = resolver({ 'mail.example.com': ['203.0.113.5', '2001:db8::5'] });
    assert.deepEqual(await mailTarget('Mail.Example.com', strict, { resolve }), {
      host: '203.0.113.5',
      servername: 'mail.example.com',
    });
    assert.deepEqual(resolve.asked, ['mail.example.com']);
  });

  it('keeps a localhost name for TLS where loopback is allowed', async () => {
    const resolve = resolver({});
    assert.deepEqual(await mailTarget('Mail.LocalHost', AddressPolicy.allowPrivate(), { resolve }), {
      host: '127.0.0.1',
      servername: 'mail.localhost',
    });
    assert.deepEqual(await mailTarget('127.1', AddressPolicy.allowPrivate(), { resolve }), { host: '127.0.0.1' });
    assert.deepEqual(resolve.asked, []);
  });

  it('refuses a name with any refused address among its addresses', async () => {
    const resolve = resolver({ 'mixed.example.com': ['203.0.113.5', '10.0.0.7'] });
    await assert.rejects(mailTarget('mixed.example.com', strict, { resolve }), /10\.0\.0\.7.*private/);
  });

  it('allows what the operator allows (a list of ranges), cloud metadata only when named', async () => {
    const some = AddressPolicy.parse('10.20.0.0/16');
    assert.deepEqual(await mailTarget('10.20.1.2', some), { host: '10.20.1.2' });
    await assert.rejects(mailTarget('10.21.1.2', some), AddressNotAllowedError);
    await assert.rejects(mailTarget('169.254.169.254', AddressPolicy.allowPrivate()), /cloud metadata/);
  });

  it('hands a name that does not resolve here to a proxy, and fails it without one', async () => {
    const resolve = resolver({});
    assert.deepEqual(await mailTarget('mail.corp.example', strict, { resolve, viaProxy: true }), {
      host: 'mail.corp.example',
    });
    await assert.rejects(mailTarget('mail.corp.example', strict, { resolve }), { code: 'ENOTFOUND' });
  });
});
