import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { httpPoster } from '../../../../src/inbound/webhooks/http-post.js';
import { AddressPolicy } from '../../../../src/shared/address-policy.js';
import { ProxyBypass } from '../../../../src/shared/web-proxy.js';
import { startConnectProxy } from '../../../support/connect-proxy.js';

describe('webhook POSTs', () => {
  let server: Server;
  let base: string;
  const bodies: string[] = [];
  before(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        bodies.push(body);
        if (req.url === '/moved') res.writeHead(302, { location: '/hook' }).end();
        else if (req.url === '/chatty') res.end('é'.repeat(100_000));
        else if (req.url !== '/silent') res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  beforeEach(() => (bodies.length = 0));

  const headers = { 'content-type': 'application/json' };
  // The receiver is on 127.0.0.1: allowed as MAILROOM_WEBHOOK_ALLOW_PRIVATE=true allows it.
  const addresses = AddressPolicy.allowPrivate();

  it('posts through MAILROOM_HTTPS_PROXY unless MAILROOM_NO_PROXY names the host', async () => {
    const proxy = await startConnectProxy();
    try {
      assert.deepEqual(
        await httpPoster({ addresses, proxy: { url: proxy.url } })(`${base}/hook`, headers, '{"a":1}', 5_000),
        {
          status: 204,
        },
      );
      assert.deepEqual(
        proxy.forwarded.map((u) => new URL(u).host),
        [new URL(base).host],
      );
      const direct = httpPoster({ addresses, proxy: { url: proxy.url, bypass: ProxyBypass.parse('127.0.0.1') } });
      assert.equal((await direct(`${base}/hook`, headers, '{"a":2}', 5_000)).status, 204);
      assert.equal(proxy.forwarded.length, 1, 'the bypassed host was posted to directly');
      assert.deepEqual(bodies, ['{"a":1}', '{"a":2}']);
    } finally {
      await proxy.close();
    }
  });

  it('does not follow redirects, and keeps nothing of the answer but its status', async () => {
    const post = httpPoster({ addresses });
    assert.deepEqual(await post(`${base}/moved`, headers, '{}', 5_000), { status: 302 });
    assert.equal(bodies.length, 1, 'posted once');
    assert.deepEqual(await post(`${base}/chatty`, headers, '{}', 5_000), { status: 200 });
  });

  it('refuses internal addresses before connecting unless they are allowed: an open port and a closed one look the same', async () => {
    const post = httpPoster({ addresses: AddressPolicy.strict() });
    const refused = { status: null, error: 'address not allowed' };
    assert.deepEqual(await post(`${base}/hook`, headers, '{}', 5_000), refused);
    assert.deepEqual(await post('http://127.0.0.1:1/hook', headers, '{}', 5_000), refused);
    assert.deepEqual(await post(`http://[::ffff:127.0.0.1]:${new URL(base).port}/hook`, headers, '{}', 5_000), refused);
    // A name is checked on the addresses the socket connects to (no window between check and use).
    assert.deepEqual(await post(`http://localhost:${new URL(base).port}/hook`, headers, '{}', 5_000), refused);
    assert.deepEqual(bodies, [], 'nothing reached the receiver');
    // Allowed by a range that holds it, not by one that does not.
    assert.equal(
      (await httpPoster({ addresses: AddressPolicy.parse('127.0.0.0/8') })(`${base}/hook`, headers, '{}', 5_000))
        .status,
      204,
    );
    assert.deepEqual(
      await httpPoster({ addresses: AddressPolicy.parse('10.0.0.0/8') })(`${base}/hook`, headers, '{}', 5_000),
      refused,
    );
  });

  it("checks the target, not the operator's proxy, when posting through one", async () => {
    const proxy = await startConnectProxy();
    try {
      const post = httpPoster({ addresses: AddressPolicy.strict(), proxy: { url: proxy.url } });
      assert.deepEqual(await post(`${base}/hook`, headers, '{}', 5_000), {
        status: null,
        error: 'address not allowed',
      });
      assert.deepEqual(proxy.forwarded, [], 'refused before the proxy was asked');
      const allowed = httpPoster({ addresses: AddressPolicy.parse('127.0.0.1'), proxy: { url: proxy.url } });
      assert.equal(
        (await allowed(`${base}/hook`, headers, '{}', 5_000)).status,
        204,
        'the proxy on 127.0.0.1 is not checked',
      );
    } finally {
      await proxy.close();
    }
  });

  it('says what went wrong when no answer came', async () => {
    const post = httpPoster({ addresses });
    assert.deepEqual(await post(`${base}/silent`, headers, '{}', 200), { status: null, error: 'timed out' });
    assert.deepEqual(await post('http://127.0.0.1:1/hook', headers, '{}', 5_000), {
      status: null,
      error: 'connection refused',
    });
    const refused = await httpPoster({ addresses, proxy: { url: new URL('http://u:secret@127.0.0.1:1') } })(
      `${base}/hook`,
      headers,
      '{}',
      5_000,
    );
    assert.equal(refused.status, null);
    assert.match(refused.status === null ? refused.error : '', /^the proxy 127\.0\.0\.1:1 cannot be reached/);
    assert.doesNotMatch(refused.status === null ? refused.error : '', /secret/);
  });
});
