/**
 * An SMTP relay that hangs: its first `hangs` connections are held without an answer, either at
 * the greeting (TCP accepted, no `220` ever) or after DATA (the whole conversation up to the final
 * dot, then no reply: the message is never taken, and the client cannot know); later connections
 * are passed to the real relay on `targetPort` (the harness), so a retry gets through.
 */
import net from 'node:net';
import { addCleanup } from '../../test/support/cleanup.js';

export type HangPoint = 'greeting' | 'afterData';

export interface HangingRelay {
  readonly port: number;
  /** Connections held so far. */
  readonly held: number;
}

export async function startHangingRelay(point: HangPoint, targetPort: number, hangs = 1): Promise<HangingRelay> {
  const sockets = new Set<net.Socket>();
  let held = 0;
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    if (held >= hangs) {
      const upstream = net.connect(targetPort, '127.0.0.1');
      sockets.add(upstream);
      upstream.on('close', () => sockets.delete(upstream));
      upstream.on('error', () => socket.destroy());
      socket.on('close', () => upstream.destroy());
      socket.pipe(upstream).pipe(socket);
      return;
    }
    held += 1;
    if (point === 'afterData') converseUntilTheDot(socket);
    // 'greeting': nothing is ever written.
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  addCleanup(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const address = server.address() as net.AddressInfo;
  return {
    port: address.port,
    get held() {
      return held;
    },
  };
}

/** Plays a plain SMTP server (RFC 5321, no extensions) up to the final dot, then stays silent. */
function converseUntilTheDot(socket: net.Socket): void {
  let buffer = '';
  let inData = false;
  socket.write('220 hanging-relay ESMTP\r\n');
  socket.on('data', (chunk: Buffer) => {
    buffer += chunk.toString('latin1');
    if (inData) {
      if (buffer.includes('\r\n.\r\n')) buffer = ''; // the final dot: no reply, ever
      return;
    }
    let end: number;
    while (!inData && (end = buffer.indexOf('\r\n')) >= 0) {
      const line = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const verb = line.slice(0, 4).toUpperCase();
      if (verb === 'EHLO' || verb === 'HELO') socket.write('250 hanging-relay\r\n');
      else if (verb === 'MAIL' || verb === 'RCPT' || verb === 'RSET' || verb === 'NOOP') socket.write('250 OK\r\n');
      else if (verb === 'DATA') {
        socket.write('354 End data with <CR><LF>.<CR><LF>\r\n');
        inData = true;
      } else if (verb === 'QUIT') socket.end('221 Bye\r\n');
      else socket.write('502 Command not implemented\r\n');
    }
  });
}
