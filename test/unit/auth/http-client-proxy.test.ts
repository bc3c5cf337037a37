import assert from 'node:assert/strict';
import { HttpClient } from '../../../src/auth/oauth/http-client.js';
import { startFakeIdp, type FakeIdp } from '../../../src/harness/fake-idp/index.js';
import { startConnectProxy } from '../../support/connect-proxy.js';

describe('identity provider requests through an HTTPS proxy (MAILROOM_HTTPS_PROXY)', () => {
  let idp: FakeIdp;
  before(async () => {
    idp = await startFakeIdp();
  });
  after(() => idp.close());

  const discovery = (): string => `${idp.url}/contoso-directory/v2.0/.well-known/openid-configuration`;

  it('goes through a tunnel the proxy opens, TLS to the identity provider end to end', async () => {
    const proxy = await startConnectProxy({ password: 'p@ss' });
    try {
      const client = new HttpClient({ ca: idp.ca, proxy: { url: proxy.url } });
      const res = await client.sendGetRequestAsync<{ token_endpoint?: string }>(discovery());
      assert.equal(res.status, 200);
      assert.match(res.body.token_endpoint ?? '', /oauth2\/v2\.0\/token$/);
      assert.deepEqual(proxy.tunnels, [new URL(idp.url).host], 'one tunnel, to the identity provider');
    } finally {
      await proxy.close();
    }
  });

  it('says why when the proxy refuses or cannot be reached, without its password', async () => {
    const proxy = await startConnectProxy({ password: 'right' });
    try {
      const wrong = new URL(proxy.url);
      wrong.password = 'wrong';
      await assert.rejects(
        new HttpClient({ ca: idp.ca, proxy: { url: wrong } }).sendGetRequestAsync(discovery()),
        (err: Error) =>
          /refused a tunnel .* \(HTTP 407: check the user name and password in the proxy URL\)/.test(err.message) &&
          !err.message.includes('wrong'),
      );
      assert.deepEqual(proxy.tunnels, []);
    } finally {
      await proxy.close();
    }
    await assert.rejects(
      new HttpClient({ ca: idp.ca, proxy: { url: new URL('http://127.0.0.1:1') } }).sendGetRequestAsync(discovery()),
      /the proxy 127\.0\.0\.1:1 cannot be reached/,
    );
  });
});
