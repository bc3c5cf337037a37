import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { startSmtpHarness, type SmtpHarness } from '../../../src/harness/smtp-harness.js';
import { makeTestCertificates } from '../../../src/harness/fake-idp/certificates.js';
import { NOT_BEGUN, SmtpTransport } from '../../../src/outbound/smtp-transport.js';
import { startConnectProxy } from '../../support/connect-proxy.js';

describe('SMTP transport (one kept connection to the relay)', () => {
  let smtp: SmtpHarness;
  let transport: SmtpTransport;
  beforeEach(async () => {
    smtp = await startSmtpHarness();
    transport = new SmtpTransport({ host: smtp.host, port: smtp.port, tls: 'starttls-when-offered', login: null });
  });
  afterEach(async () => {
    transport.close();
    await smtp.close();
  });

  const envelope = { from: 'support@example.com', to: ['customer@example.net'] };
  const message = (n: number): Buffer => Buffer.from(`Subject: n${n}\r\n\r\nbody ${n}\r\n.dot-stuffed line\r\n`);

  it('sends messages one after another over one connection, the bytes as given', async () => {
    for (const n of [1, 2, 3]) {
      const result = await transport.send(envelope, message(n));
      assert.match(result.response, /^250/);
      assert.deepEqual(result.accepted, ['customer@example.net']);
    }
    const received = await smtp.waitFor(3);
    assert.equal(new Set(received.map((m) => m.sessionId)).size, 1, 'one connection');
    assert.deepEqual(
      received.map((m) => m.raw.toString()),
      [1, 2, 3].map((n) => message(n).toString()),
    );
  });

  it('fails a send whose connection is closed while the message is on its way, instead of waiting forever', async () => {
    const proxy = await startConnectProxy();
    try {
      for (const via of [undefined, proxy.url]) {
        const t = new SmtpTransport({
          host: smtp.host,
          port: smtp.port,
          tls: 'starttls-when-offered',
          login: null,
          proxy: via,
        });
        smtp.faults.slow({ delayMs: 100 }); // every reply 100 ms late: the transaction is under way at 350 ms
        const sending = t.send(envelope, message(1));
        setTimeout(() => t.close(), 350);
        const outcome = await Promise.race([
          sending.then(
            () => 'sent',
            (err: Error & { code?: string }) => err.code,
          ),
          new Promise((resolve) => setTimeout(() => resolve('still waiting'), 3_000)),
        ]);
        assert.equal(outcome, 'ECONNECTION', via ? 'through a proxy' : 'directly');
        smtp.faults.slow(undefined);
      }
    } finally {
      await proxy.close();
    }
  });

  it('sends over a new connection when the server closed the kept one while it was idle', async () => {
    await transport.send(envelope, message(1));
    await smtp.dropConnections();
    await transport.send(envelope, message(2));
    const received = await smtp.waitFor(2);
    assert.equal(received.length, 2, 'each once');
    assert.notEqual(received[0]?.sessionId, received[1]?.sessionId);
  });

  it('reports a refused recipient with its reply and keeps the connection for the next message', async () => {
    await transport.send(envelope, message(1));
    smtp.faults.rejectRecipient('*', 550, '5.1.1 no such user', { times: 1 });
    await assert.rejects(transport.send(envelope, message(2)), (err: Error & { responseCode?: number }) => {
      assert.equal(err.responseCode, 550);
      return true;
    });
    await transport.send(envelope, message(3));
    const received = await smtp.waitFor(2);
    assert.deepEqual(
      received.map((m) => m.raw.toString()),
      [message(1).toString(), message(3).toString()],
    );
    assert.equal(received[0]?.sessionId, received[1]?.sessionId, 'the session was reset, not replaced');
  });

  it('sends a message again after its MAIL FROM was refused, given the same envelope object', async () => {
    const same = { from: 'support@example.com', to: ['customer@example.net'] };
    smtp.faults.replyAt('mailFrom', 451, '4.3.0 try later', { times: 1 });
    await assert.rejects(transport.send(same, message(1)), (err: Error & { responseCode?: number }) => {
      assert.equal(err.responseCode, 451);
      return true;
    });
    const result = await transport.send(same, message(1));
    assert.match(result.response, /^250/, 'the retry is not failed by the first attempt’s refusal');
    assert.deepEqual(same, { from: 'support@example.com', to: ['customer@example.net'] }, 'left as it was');
    assert.equal((await smtp.waitFor(1)).length, 1);
  });

  it('asks mayBegin once connected, before MAIL FROM: a message given up there is not sent at all', async () => {
    let asked = 0;
    await assert.rejects(
      transport.send(envelope, message(1), { mayBegin: () => (asked += 1) < 0 }),
      (err: Error & { code?: string }) => err.code === NOT_BEGUN,
    );
    assert.equal(asked, 1);
    // MAIL FROM of the first message never went: the fault armed for one MAIL FROM meets the second.
    smtp.faults.replyAt('mailFrom', 451, '4.3.0 try later', { times: 1 });
    await assert.rejects(transport.send(envelope, message(2)), (err: Error & { responseCode?: number }) => {
      assert.equal(err.responseCode, 451);
      return true;
    });
    await transport.send(envelope, message(3), { mayBegin: () => true });
    const received = await smtp.waitFor(1);
    assert.deepEqual(
      received.map((m) => m.raw.toString()),
      [message(3).toString()],
    );
  });

  it('holds the final dot until the gate settles, and gives the message up when it fails', async () => {
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const sending = transport.send(envelope, message(1), { beforeDot: gate });
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(smtp.messages.length, 0, 'not complete before the gate opens');
    open();
    await sending;
    assert.equal((await smtp.waitFor(1)).length, 1);
    const refused = Promise.reject(new Error('record failed'));
    refused.catch(() => undefined); // the transport's own handler comes a moment later
    await assert.rejects(transport.send(envelope, message(2), { beforeDot: refused }));
    await transport.send(envelope, message(3));
    const received = await smtp.waitFor(2);
    assert.deepEqual(
      received.map((m) => m.raw.toString()),
      [message(1).toString(), message(3).toString()],
    );
  });

  it('sends over a new connection when the kept one closes at the next MAIL FROM, before a byte of the message went', async () => {
    // A relay that closes its first connection when the second message's MAIL FROM arrives
    // (as a server does that drops idle connections at the moment the client speaks again).
    const sessions: string[][] = [];
    const server: Server = createServer((socket: Socket) => {
      const lines: string[] = [];
      sessions.push(lines);
      const session = sessions.length;
      let inData = false;
      let buffered = '';
      socket.write('220 relay.test ESMTP\r\n');
      socket.on('data', (chunk) => {
        buffered += chunk.toString('latin1');
        for (let nl = buffered.indexOf('\r\n'); nl >= 0; nl = buffered.indexOf('\r\n')) {
          const line = buffered.slice(0, nl);
          buffered = buffered.slice(nl + 2);
          lines.push(line);
          if (inData) {
            if (line === '.') {
              inData = false;
              socket.write('250 2.0.0 queued\r\n');
            }
            continue;
          }
          const verb = line.slice(0, 4).toUpperCase();
          const mails = lines.filter((l) => l.toUpperCase().startsWith('MAIL')).length;
          if (verb === 'EHLO') socket.write('250-relay.test\r\n250 8BITMIME\r\n');
          else if (verb === 'MAIL' && session === 1 && mails === 2) socket.destroy();
          else if (verb === 'DATA') {
            inData = true;
            socket.write('354 go ahead\r\n');
          } else if (verb === 'QUIT') socket.end('221 bye\r\n');
          else socket.write('250 2.1.0 ok\r\n');
        }
      });
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    const relay = new SmtpTransport({ host: '127.0.0.1', port, tls: 'starttls-when-offered', login: null });
    try {
      await relay.send(envelope, message(1));
      const second = await relay.send(envelope, message(2));
      assert.match(second.response, /^250/);
      assert.equal(sessions.length, 2, 'a second connection');
      const bodies = (lines: string[]): number => lines.filter((l) => l.startsWith('Subject:')).length;
      assert.deepEqual(sessions.map(bodies), [1, 1], 'each message went once');
    } finally {
      relay.close();
      server.close();
    }
  });

  it('verify() says whether it logged in: not when the server offers no AUTH', async () => {
    const withUsers = await startSmtpHarness({ users: [{ user: 'relay', password: 'pw' }] });
    const noAuth = new SMTPServer({ disabledCommands: ['AUTH', 'STARTTLS'], authOptional: true, logger: false });
    await new Promise<void>((resolve) => noAuth.listen(0, '127.0.0.1', resolve));
    const login = { user: 'relay', pass: 'pw' };
    const noAuthPort = (noAuth.server.address() as AddressInfo).port;
    const transports = [
      new SmtpTransport({ host: '127.0.0.1', port: withUsers.port, tls: 'starttls-when-offered', login }),
      new SmtpTransport({ host: '127.0.0.1', port: noAuthPort, tls: 'starttls-when-offered', login }),
    ];
    try {
      assert.deepEqual(await Promise.all(transports.map((t) => t.verify())), [true, false]);
    } finally {
      for (const t of transports) t.close();
      await withUsers.close();
      await new Promise<void>((resolve) => noAuth.close(() => resolve()));
    }
  });

  describe('"Use SSL" (secure)', () => {
    const certificates = makeTestCertificates();
    const tlsHarness = (secure: boolean): Promise<SmtpHarness> =>
      startSmtpHarness({ tls: { key: certificates.key, cert: certificates.cert, secure } });
    const secureTransport = (port: number): SmtpTransport =>
      new SmtpTransport({ host: '127.0.0.1', port, tls: 'implicit', login: null, ca: certificates.ca });
    let other: SmtpHarness | undefined;
    let otherTransport: SmtpTransport | undefined;
    afterEach(async () => {
      otherTransport?.close();
      await other?.close();
      other = undefined;
      otherTransport = undefined;
    });

    it('uses TLS from the first byte on an implicit-TLS port (465 style)', async () => {
      other = await tlsHarness(true);
      otherTransport = secureTransport(other.port);
      await otherTransport.send(envelope, message(1));
      const [received] = await other.waitFor(1);
      assert.equal(received?.secure, true);
    });

    it('uses STARTTLS, required, on a STARTTLS port (587 style, as in the Office 365 example), and keeps to it', async () => {
      other = await tlsHarness(false);
      otherTransport = secureTransport(other.port);
      await otherTransport.send(envelope, message(1));
      await other.dropConnections();
      await otherTransport.send(envelope, message(2)); // a new connection
      const received = await other.waitFor(2);
      assert.deepEqual(
        received.map((m) => m.secure),
        [true, true],
        'both over TLS',
      );
    });

    it('never falls back to plain text: a server that offers no TLS gets nothing', async () => {
      otherTransport = secureTransport(smtp.port); // the plain harness: STARTTLS disabled
      await assert.rejects(otherTransport.send(envelope, message(1)), /STARTTLS|TLS/i);
      assert.equal(smtp.messages.length, 0);
    });
  });

  describe('through an HTTP proxy (MAILROOM_MAIL_PROXY)', () => {
    it('speaks SMTP, and TLS from the first byte, inside the tunnel the proxy opens', async () => {
      const certificates = makeTestCertificates();
      const tlsSmtp = await startSmtpHarness({ tls: { key: certificates.key, cert: certificates.cert, secure: true } });
      // The plain relay's greeting comes in the same packet as the proxy's 200 (as a real proxy may send it).
      const greetingProxy = await startConnectProxy({ password: 'proxy-pass', serverSpeaksFirst: true });
      const proxy = await startConnectProxy({ password: 'proxy-pass' });
      const plain = new SmtpTransport({
        host: '127.0.0.1',
        port: smtp.port,
        tls: 'starttls-when-offered',
        login: null,
        proxy: greetingProxy.url,
      });
      const secure = new SmtpTransport({
        host: '127.0.0.1',
        port: tlsSmtp.port,
        tls: 'implicit',
        login: null,
        ca: certificates.ca,
        proxy: proxy.url,
      });
      try {
        await plain.send(envelope, message(1));
        await secure.send(envelope, message(2));
        assert.equal((await smtp.waitFor(1))[0]?.raw.toString(), message(1).toString());
        assert.equal((await tlsSmtp.waitFor(1))[0]?.secure, true);
        assert.deepEqual(greetingProxy.tunnels, [`127.0.0.1:${smtp.port}`]);
        assert.deepEqual(proxy.tunnels, [`127.0.0.1:${tlsSmtp.port}`]);
      } finally {
        plain.close();
        secure.close();
        await tlsSmtp.close();
        await greetingProxy.close();
        await proxy.close();
      }
    });

    it('reports a refused tunnel as the proxy’s doing (EPROXY), nothing sent', async () => {
      const proxy = await startConnectProxy({ password: 'right' });
      const wrong = new URL(proxy.url);
      wrong.password = 'wrong';
      const refused = new SmtpTransport({
        host: '127.0.0.1',
        port: smtp.port,
        tls: 'starttls-when-offered',
        login: null,
        proxy: wrong,
      });
      try {
        await assert.rejects(refused.send(envelope, message(1)), (err: Error & { code?: string }) => {
          assert.equal(err.code, 'EPROXY');
          assert.match(err.message, /HTTP 407/);
          assert.ok(!err.message.includes('wrong'), 'the proxy password stays out of the message');
          return true;
        });
        assert.equal(smtp.messages.length, 0);
      } finally {
        refused.close();
        await proxy.close();
      }
    });
  });
});
