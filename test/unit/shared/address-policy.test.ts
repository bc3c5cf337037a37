import assert from 'node:assert/strict';
import { AddressPolicy, AddressPolicyError, refusedKind } from '../../../src/shared/address-policy.js';
import { checkHost } from '../../../src/shared/address-lookup.js';

describe('address policy: where webhooks and remote Src may connect', () => {
  const table: [string, string | undefined][] = [
    ['8.8.8.8', undefined],
    ['203.0.113.9', undefined],
    ['2606:4700:4700::1111', undefined],
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['::1', 'loopback'],
    ['[::1]', 'loopback'],
    ['10.0.0.1', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['172.32.0.1', undefined],
    ['192.168.1.1', 'private'],
    ['100.64.0.1', 'shared (CGNAT)'],
    ['100.127.255.255', 'shared (CGNAT)'],
    ['100.128.0.1', undefined],
    ['169.254.1.1', 'link-local'],
    ['fe80::1', 'link-local'],
    ['fe80::1%eth0', 'link-local'],
    ['169.254.169.254', 'cloud metadata'],
    ['fd00:ec2::254', 'cloud metadata'],
    ['fc00::1', 'unique-local'],
    ['fd12:3456::1', 'unique-local'],
    ['0.0.0.0', 'unspecified'],
    ['::', 'unspecified'],
    ['224.0.0.1', 'multicast'],
    ['ff02::1', 'multicast'],
    ['255.255.255.255', 'reserved'],
    // IPv4 carried in IPv6 forms is judged as the IPv4 address it reaches.
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::ffff:10.1.2.3', 'private'],
    ['::ffff:169.254.169.254', 'cloud metadata'],
    ['::ffff:8.8.8.8', undefined],
    ['::127.0.0.1', 'loopback'],
    ['64:ff9b::192.168.0.1', 'private'],
    ['64:ff9b::8.8.8.8', undefined],
    // Issue 24 review E: the other IPv6 forms that carry an IPv4 address.
    ['2002:7f00:1::', 'loopback'], // 6to4 of 127.0.0.1
    ['2002:a9fe:a9fe::1', 'cloud metadata'], // 6to4 of 169.254.169.254
    ['2002:c0a8:101::', 'private'], // 6to4 of 192.168.1.1
    ['2002:808:808::1', undefined], // 6to4 of 8.8.8.8
    ['::ffff:0:127.0.0.1', 'loopback'], // IPv4-translated (RFC 2765)
    ['::ffff:0:a9fe:a9fe', 'cloud metadata'],
    ['::ffff:0:8.8.8.8', undefined],
    ['64:ff9b:1::7f00:1', 'reserved'], // local-use NAT64 (RFC 8215)
    ['64:ff9b:1:7f00:0:100::', 'reserved'],
    ['2001:0:4136:e378:8000:63bf:3fff:fdd2', 'reserved'], // Teredo
    ['2001:db8::1', undefined], // not Teredo (2001::/32 only)
    ['not-an-address', undefined],
  ];
  for (const [address, kind] of table) {
    it(`${address}: ${kind ?? 'public'}`, () => assert.equal(refusedKind(address), kind));
  }

  it('strict refuses them all; true allows all but cloud metadata; a list allows its ranges only', () => {
    const strict = AddressPolicy.parse('');
    assert.equal(strict.refuses('127.0.0.1'), 'loopback');
    assert.equal(strict.refuses('8.8.8.8'), undefined);
    assert.equal(AddressPolicy.parse('false').refuses('10.0.0.1'), 'private');
    const all = AddressPolicy.parse('true');
    assert.equal(all.refuses('127.0.0.1'), undefined);
    assert.equal(all.refuses('fd12::1'), undefined);
    assert.equal(all.refuses('169.254.169.254'), 'cloud metadata');
    assert.equal(all.refuses('::ffff:169.254.169.254'), 'cloud metadata');
    const list = AddressPolicy.parse(' 10.20.0.0/16 , fd12::/16,169.254.169.254 ');
    assert.equal(list.refuses('10.20.3.4'), undefined);
    assert.equal(list.refuses('::ffff:10.20.3.4'), undefined);
    assert.equal(list.refuses('10.21.0.1'), 'private');
    assert.equal(list.refuses('fd12:1::1'), undefined);
    assert.equal(list.refuses('fd13::1'), 'unique-local');
    assert.equal(list.refuses('169.254.169.254'), undefined, 'named explicitly');
    assert.equal(list.refuses('127.0.0.1'), 'loopback');
  });

  it('refuses values that are no addresses or ranges', () => {
    for (const bad of ['maybe', '10.0.0.0/33', 'fd00::/129', '10.0.0.0/x', 'intranet.example']) {
      assert.throws(() => AddressPolicy.parse(bad), AddressPolicyError, bad);
    }
  });

  it('checks a name by every address it resolves to; a name that does not resolve is left to the connection', async () => {
    const strict = AddressPolicy.strict();
    const resolve = async (name: string) => {
      if (name === 'mixed.example') {
        return [
          { address: '203.0.113.9', family: 4 },
          { address: '10.0.0.5', family: 4 },
        ];
      }
      if (name === 'public.example') return [{ address: '203.0.113.9', family: 4 }];
      throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${name}`), { code: 'ENOTFOUND' });
    };
    assert.equal((await checkHost(strict, 'mixed.example', resolve)).refused?.kind, 'private');
    assert.deepEqual(await checkHost(strict, 'public.example', resolve), {});
    assert.equal((await checkHost(strict, 'nowhere.example', resolve)).unresolved?.code, 'ENOTFOUND');
    assert.equal((await checkHost(strict, '[::1]', resolve)).refused?.kind, 'loopback');
    // RFC 6761 6.3: localhost names are loopback whatever the resolver says (here: nothing).
    for (const name of ['localhost', 'localhost.', 'LocalHost', 'api.localhost', 'a.b.localhost.']) {
      assert.equal((await checkHost(strict, name, resolve)).refused?.kind, 'loopback', name);
    }
    assert.equal((await checkHost(strict, 'notlocalhost.example', resolve)).unresolved?.code, 'ENOTFOUND');
  });
});
