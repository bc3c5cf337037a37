import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { HttpClient } from '../../../src/auth/oauth/http-client.js';
import { startFakeIdp, type FakeIdp } from '../../../src/harness/fake-idp/index.js';

/** A minimal HTTP CONNECT proxy on loopback that records the tunnels asked of it. */
async function startConnectProxy(
  options: { password?: string } = {},
): Promise<{ url: URL; tunnels: string[]; close(): Promise<void> }> {
  const tunnels: string[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((_req, res) => res.writeHead(405).end());
  server.on('connect', (req, client: Socket, head: Buffer) => {
    sockets.add(client);
    const expected = options.password && `Basic ${Buffer.from(`proxy-user:${options.password}`).toString('base64')}`;
    if (expected && req.headers['proxy-authorization'] !== expected) {
      client.end('HTTP/1.1 407 Proxy Authentication Required\r\n\r\n');
      return;
    }
    tunnels.push(req.url ?? '');
    const [host, port] = (req.url ?? '').split(':');
    const upstream = connect(Number(port), host, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(client).pipe(upstream);
    });
    sockets.add(upstream);
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const auth = options.password ? `proxy-user:${options.password}@` : '';
  return {
    url: new URL(`http://${auth}127.0.0.1:${port}`),
    tunnels,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

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
      const client = new HttpClient({ ca: idp.ca, proxy: proxy.url });
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
        new HttpClient({ ca: idp.ca, proxy: wrong }).sendGetRequestAsync(discovery()),
        (err: Error) => /refused a tunnel .* \(HTTP 407\)/.test(err.message) && !err.message.includes('wrong'),
      );
      assert.deepEqual(proxy.tunnels, []);
    } finally {
      await proxy.close();
    }
    await assert.rejects(
      new HttpClient({ ca: idp.ca, proxy: new URL('http://127.0.0.1:1') }).sendGetRequestAsync(discovery()),
      /the proxy 127\.0\.0\.1:1 cannot be reached/,
    );
  });
});
