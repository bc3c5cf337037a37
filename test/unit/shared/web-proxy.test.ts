import assert from 'node:assert/strict';
import { ProxyBypass, ProxyBypassError, webProxyFor } from '../../../src/shared/web-proxy.js';

describe('MAILROOM_NO_PROXY: the hosts the web proxy is bypassed for', () => {
  const proxy = new URL('http://proxy.example:3128');

  it('matches host names with their subdomains, without case, a leading dot meaning the same', () => {
    const bypass = ProxyBypass.parse(' intranet.example , .corp.example,LOCALHOST');
    for (const host of [
      'intranet.example',
      'api.intranet.example',
      'x.corp.example',
      'corp.example',
      'localhost',
      'Intranet.Example.',
    ]) {
      assert.equal(bypass.matches(host), true, host);
    }
    for (const host of ['otherintranet.example', 'example', 'login.microsoftonline.com', 'localhost.evil.test']) {
      assert.equal(bypass.matches(host), false, host);
    }
  });

  it('matches IP addresses and CIDR ranges, IPv6 in brackets or not', () => {
    const bypass = ProxyBypass.parse('127.0.0.1,10.0.0.0/8,[fd00::]/8,::1');
    assert.equal(bypass.matches('127.0.0.1'), true);
    assert.equal(bypass.matches('127.0.0.2'), false);
    assert.equal(bypass.matches('10.200.3.4'), true);
    assert.equal(bypass.matches('11.0.0.1'), false);
    assert.equal(bypass.matches('[fd12::5]'), true);
    assert.equal(bypass.matches('[::1]'), true);
    assert.equal(bypass.matches('[fe80::1]'), false);
    assert.equal(bypass.matches('10.example'), false, 'a name that starts like an address is a name');
  });

  it('bypasses every host with *, none when empty', () => {
    assert.equal(ProxyBypass.parse('*').matches('login.microsoftonline.com'), true);
    assert.equal(ProxyBypass.parse(' , ').matches('localhost'), false);
  });

  it('refuses entries it could not apply, naming them', () => {
    for (const [raw, message] of [
      ['intranet.example:8080', /'intranet\.example:8080' is not a host name.*ports are not supported/],
      ['10.0.0.0/33', /'10\.0\.0\.0\/33' is not a CIDR range \(its prefix length is wrong\)/],
      ['intranet/8', /'intranet\/8' is not a host name, IP address or CIDR range/],
      ['http://intranet.example', /is not a host name/],
    ] as const) {
      assert.throws(
        () => ProxyBypass.parse(raw),
        (err: Error) => err instanceof ProxyBypassError && message.test(err.message),
      );
    }
  });

  it('gives the proxy for a URL unless its host is bypassed', () => {
    const bypass = ProxyBypass.parse('hooks.internal');
    assert.equal(webProxyFor(undefined, new URL('https://example.net/')), undefined);
    assert.equal(webProxyFor({ url: proxy }, new URL('https://hooks.internal/x')), proxy);
    assert.equal(webProxyFor({ url: proxy, bypass }, new URL('https://hooks.internal/x')), undefined);
    assert.equal(webProxyFor({ url: proxy, bypass }, new URL('https://example.net/')), proxy);
  });
});
