import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { makeTestCertificates } from '../../../src/harness/fake-idp/certificates.js';
import { httpExchange, HttpExchangeError } from '../../../src/shared/http-exchange.js';
import { ProxyBypass } from '../../../src/shared/web-proxy.js';
import { startConnectProxy } from '../../support/connect-proxy.js';

describe('httpExchange: the engine’s own HTTP requests, directly or through the web proxy', () => {
  let server: Server;
  let base: URL;
  const received: Array<{ method: string; url: string; body: string; authorization?: string | undefined }> = [];
  before(async () => {
    server = createServer((req: IncomingMessage, res: ServerResponse) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        received.push({ method: req.method ?? '', url: req.url ?? '', body, authorization: req.headers.authorization });
        const path = new URL(req.url ?? '/', 'http://x').pathname;
        if (path === '/big') res.end('x'.repeat(5000));
        // /silent is never answered.
        else if (path !== '/silent') res.writeHead(201, { 'x-answer': 'yes' }).end(`got ${req.method} ${body}`);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  beforeEach(() => (received.length = 0));

  it('posts a body and reads the answer, whatever its status', async () => {
    const answer = await httpExchange(new URL('/hook', base), {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: 'hello',
      timeoutMs: 5_000,
      maxBytes: 1_000,
    });
    assert.equal(answer.status, 201);
    assert.equal(answer.headers['x-answer'], 'yes');
    assert.equal(answer.body.toString(), 'got POST hello');
  });

  it('hands plain http to the proxy to forward (credentials for the proxy alone), unless it bypasses the host', async () => {
    const proxy = await startConnectProxy({ password: 'p@ss' });
    try {
      const target = new URL('/a?x=1', base);
      target.username = 'site-user';
      target.password = 'site-secret';
      const answer = await httpExchange(target, {
        method: 'POST',
        body: 'hello',
        timeoutMs: 5_000,
        maxBytes: 1_000,
        proxy: { url: proxy.url },
      });
      assert.equal(answer.status, 201);
      assert.equal(answer.body.toString(), 'got POST hello');
      assert.deepEqual(proxy.forwarded, [`${base.origin}/a?x=1`], 'forwarded, the site credentials left out');
      assert.deepEqual(proxy.tunnels, [], 'no CONNECT for plain http');
      await httpExchange(new URL('/b', base), {
        timeoutMs: 5_000,
        maxBytes: 1_000,
        proxy: { url: proxy.url, bypass: ProxyBypass.parse('127.0.0.0/8') },
      });
      assert.equal(proxy.forwarded.length, 1, 'directly to a bypassed host');
      assert.deepEqual(
        received.map((r) => [r.url, r.authorization]),
        [
          ['/a?x=1', `Basic ${Buffer.from('site-user:site-secret').toString('base64')}`],
          ['/b', undefined],
        ],
      );
    } finally {
      await proxy.close();
    }
  });

  it('checks the certificate of an HTTPS server named by its IP address against that address, not the proxy’s', async () => {
    const certs = makeTestCertificates('IP:127.0.0.1');
    const tls = createHttpsServer({ key: certs.key, cert: certs.cert }, (_req, res) => res.end('secret kept'));
    await new Promise<void>((resolve) => tls.listen(0, '127.0.0.1', resolve));
    const proxy = await startConnectProxy({ host: '127.0.0.2' }); // another address than the server's
    try {
      const target = new URL(`https://127.0.0.1:${(tls.address() as AddressInfo).port}/`);
      const answer = await httpExchange(target, {
        timeoutMs: 5_000,
        maxBytes: 1_000,
        proxy: { url: proxy.url },
        ca: certs.ca,
      });
      assert.equal(answer.body.toString(), 'secret kept');
      assert.deepEqual(proxy.tunnels, [target.host]);
    } finally {
      await proxy.close();
      tls.closeAllConnections();
      await new Promise<void>((resolve) => tls.close(() => resolve()));
    }
  });

  it('fails with a code and no password when the proxy refuses or cannot be reached', async () => {
    const proxy = await startConnectProxy({ password: 'right' });
    try {
      const wrong = new URL(proxy.url);
      wrong.password = 'wrong';
      await assert.rejects(
        httpExchange(new URL('/a', base), { timeoutMs: 5_000, maxBytes: 1_000, proxy: { url: wrong } }),
        (err: HttpExchangeError) =>
          err.atProxy && err.code === 'EPROXY' && /HTTP 407/.test(err.message) && !err.message.includes('wrong'),
      );
    } finally {
      await proxy.close();
    }
    await assert.rejects(
      httpExchange(new URL('/a', base), {
        timeoutMs: 5_000,
        maxBytes: 1_000,
        proxy: { url: new URL('http://127.0.0.1:1') },
      }),
      (err: HttpExchangeError) =>
        err.atProxy && err.code === 'ECONNREFUSED' && /the proxy 127\.0\.0\.1:1 cannot be reached/.test(err.message),
    );
    assert.deepEqual(received, [], 'nothing reached the server');
  });

  it('bounds the body: fails past maxBytes, or keeps its start with truncate', async () => {
    await assert.rejects(
      httpExchange(new URL('/big', base), { timeoutMs: 5_000, maxBytes: 1_000 }),
      (err: HttpExchangeError) => err.code === 'ETOOLARGE' && /larger than 1000 bytes/.test(err.message),
    );
    const cut = await httpExchange(new URL('/big', base), { timeoutMs: 5_000, maxBytes: 1_000, truncate: true });
    assert.equal(cut.status, 200);
    assert.equal(cut.body.length, 1_000);
  });

  it('drops the body with discardBody, reusing the connection for a short one and closing it after a long one', async () => {
    const sockets = new Set<unknown>();
    const count = (socket: unknown): void => void sockets.add(socket);
    server.on('connection', count);
    try {
      for (let i = 0; i < 3; i += 1) {
        const answer = await httpExchange(new URL('/hook', base), {
          method: 'POST',
          body: 'x',
          timeoutMs: 5_000,
          maxBytes: 1_000,
          discardBody: true,
        });
        assert.equal(answer.status, 201);
        assert.equal(answer.body.length, 0);
      }
      assert.equal(sockets.size, 1, 'three POSTs over one kept-alive connection');
      const big = await httpExchange(new URL('/big', base), { timeoutMs: 5_000, maxBytes: 1_000, discardBody: true });
      assert.equal(big.status, 200);
      await httpExchange(new URL('/hook', base), { method: 'POST', body: 'y', timeoutMs: 5_000, maxBytes: 1_000 });
      assert.equal(sockets.size, 2, 'the connection of a long answer is not reused');
    } finally {
      server.off('connection', count);
    }
  });

  it("sends the URL's path, query and credentials as node:http does with a URL", async () => {
    const url = new URL('/hook?a=1&b=two', base);
    url.username = 'us er';
    url.password = 'p@ss';
    await httpExchange(url, { method: 'POST', body: 'q', timeoutMs: 5_000, maxBytes: 1_000 });
    assert.equal(received[0]?.url, '/hook?a=1&b=two');
    assert.equal(received[0]?.authorization, `Basic ${Buffer.from('us er:p@ss').toString('base64')}`);
  });

  it('bounds the time, and names the URL without its query', async () => {
    const started = Date.now();
    await assert.rejects(
      httpExchange(new URL('/silent?token=secret', base), { timeoutMs: 300, maxBytes: 1_000 }),
      (err: HttpExchangeError) =>
        err.code === 'ETIMEDOUT' && err.message.includes('/silent') && !err.message.includes('secret'),
    );
    assert.ok(Date.now() - started < 3_000, 'gave up in time');
  });

  it('says why when the server cannot be reached', async () => {
    await assert.rejects(
      httpExchange(new URL('http://127.0.0.1:1/x'), { timeoutMs: 5_000, maxBytes: 1_000 }),
      (err: HttpExchangeError) => err.code === 'ECONNREFUSED',
    );
  });
});
