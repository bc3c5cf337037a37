import { createServer, request as httpRequest, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';

/**
 * A minimal HTTP proxy on loopback that records the tunnels asked of it (CONNECT) and the plain
 * http requests it forwarded. With
 * `serverSpeaksFirst`, it waits for the server's first bytes (an SMTP or IMAP greeting) and sends
 * them in the same write as its 200 answer, as a real proxy may: the client must keep what follows
 * the answer's headers.
 */
export async function startConnectProxy(
  options: { password?: string; serverSpeaksFirst?: boolean; host?: string } = {},
): Promise<{ url: URL; tunnels: string[]; forwarded: string[]; close(): Promise<void> }> {
  const tunnels: string[] = [];
  const forwarded: string[] = [];
  const sockets = new Set<Socket>();
  const expected = options.password && `Basic ${Buffer.from(`proxy-user:${options.password}`).toString('base64')}`;
  // Plain http is asked of a proxy in absolute form (`GET http://host/path`): forwarded as it is.
  const server: Server = createServer((req, res) => {
    if (!req.url?.startsWith('http://')) return void res.writeHead(405).end();
    if (expected && req.headers['proxy-authorization'] !== expected) return void res.writeHead(407).end();
    forwarded.push(req.url);
    const headers = { ...req.headers };
    delete headers['proxy-authorization'];
    const upstream = httpRequest(req.url, { method: req.method, headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => res.writeHead(502).end());
    req.pipe(upstream);
  });
  server.on('connection', (socket: Socket) => sockets.add(socket));
  server.on('connect', (req, client: Socket, head: Buffer) => {
    sockets.add(client);
    if (expected && req.headers['proxy-authorization'] !== expected) {
      client.end('HTTP/1.1 407 Proxy Authentication Required\r\n\r\n');
      return;
    }
    tunnels.push(req.url ?? '');
    const [host, port] = (req.url ?? '').split(':');
    const established = 'HTTP/1.1 200 Connection Established\r\n\r\n';
    const upstream = connect(Number(port), host, () => {
      upstream.write(head);
      if (!options.serverSpeaksFirst) {
        client.write(established);
        upstream.pipe(client).pipe(upstream);
        return;
      }
      upstream.once('data', (greeting: Buffer) => {
        client.write(Buffer.concat([Buffer.from(established), greeting]));
        upstream.pipe(client).pipe(upstream);
      });
    });
    sockets.add(upstream);
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as AddressInfo;
  const auth = options.password ? `proxy-user:${options.password}@` : '';
  return {
    url: new URL(`http://${auth}${host}:${port}`),
    tunnels,
    forwarded,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
