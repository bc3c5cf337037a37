import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { makeTestCertificates } from '../../src/harness/fake-idp/certificates.js';
import { startFakeImap, type FakeImapServer } from '../../src/harness/fake-imap/index.js';
import { openApiHarness, type ApiHarness } from '../support/api-harness.js';
import { isPostgresReachable } from '../support/database.js';
import { eventually, rawMail } from '../support/mail.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON answers in tests

/** Implicit TLS in front of the fake IMAP server, with a certificate from a CA made for the test. */
async function startTlsProxy(
  target: number,
  key: string,
  cert: string,
): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = tls.createServer({ key, cert }, (socket) => {
    const upstream = net.connect(target, '127.0.0.1');
    sockets.add(socket).add(upstream);
    socket.on('error', () => upstream.destroy());
    upstream.on('error', () => socket.destroy());
    socket.pipe(upstream).pipe(socket);
  });
  server.on('tlsClientError', () => undefined); // the untrusting client hangs up: expected
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('e-mail server default destination and CA file', function () {
  this.timeout(60_000);
  let h: ApiHarness;
  let imap: FakeImapServer;
  let tenantId: string;

  beforeEach(async () => {
    h = await openApiHarness((await isPostgresReachable()) ? 'postgres' : 'pglite');
    imap = await startFakeImap({
      users: [
        { user: 'support@example.com', password: 'imap-pass' },
        { user: 'other@example.com', password: 'imap-pass' },
      ],
    });
    tenantId = (await h.call<Obj>('POST', '/api/v1/tenants', { name: 'Routing' })).body.id;
  });
  afterEach(async () => {
    await h.close();
    await imap.close();
  });

  function serverBody(name: string, user: string, imapExtra: Obj = {}, extra: Obj = {}): Obj {
    return {
      name,
      imap: {
        host: '127.0.0.1',
        port: imap.port,
        secure: false,
        user,
        auth: { method: 'password', password: 'imap-pass' },
        ...imapExtra,
      },
      smtp: { host: '127.0.0.1', port: 2525, auth: { mode: 'none' } },
      ...extra,
    };
  }

  async function create(path: string, body: Obj): Promise<string> {
    const res = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/${path}`, body);
    assert.equal(res.status, 201, res.raw);
    return res.body.id as string;
  }

  async function feed(destinationId: string): Promise<Obj[]> {
    const res = await h.call<Obj>('GET', `/api/v1/tenants/${tenantId}/destinations/${destinationId}/messages`);
    return res.body.messages as Obj[];
  }

  async function unrouted(serverId: string): Promise<Obj[]> {
    const res = await h.call<Obj>('GET', `/api/v1/tenants/${tenantId}/servers/${serverId}/messages?status=unrouted`);
    return res.body.messages as Obj[];
  }

  it('sends mail that matches no monitored destination to the default destination, which must use the server', async () => {
    const refused = await h.call<Obj>(
      'POST',
      `/api/v1/tenants/${tenantId}/servers`,
      serverBody('New', 'support@example.com', {}, { defaultDestinationId: '00000000-0000-4000-8000-000000000000' }),
    );
    assert.equal(refused.status, 400, refused.raw);
    assert.equal(refused.body.error.field, 'defaultDestinationId');

    const main = await create('servers', serverBody('Main', 'support@example.com'));
    const second = await create('servers', serverBody('Second', 'other@example.com'));
    const support = await create('destinations', { name: 'Support', address: 'support@example.com', serverId: main });
    const fallback = await create('destinations', { name: 'Triage', address: 'triage@example.com', serverId: main });
    const elsewhere = await create('destinations', { name: 'Other', address: 'other@example.com', serverId: second });

    const foreign = await h.call<Obj>('PATCH', `/api/v1/tenants/${tenantId}/servers/${main}`, {
      defaultDestinationId: elsewhere,
    });
    assert.equal(foreign.status, 400, foreign.raw);
    assert.equal(foreign.body.error.field, 'defaultDestinationId');
    assert.match(foreign.body.error.message, /does not use this e-mail server/);

    const set = await h.call<Obj>('PATCH', `/api/v1/tenants/${tenantId}/servers/${main}`, {
      defaultDestinationId: fallback,
    });
    assert.equal(set.status, 200, set.raw);
    assert.equal(set.body.defaultDestinationId, fallback);

    imap.append('support@example.com', 'INBOX', rawMail({ to: 'support@example.com', subject: 'for support' }));
    imap.append('support@example.com', 'INBOX', rawMail({ to: 'nobody@example.com', subject: 'for nobody' }));
    await h.inbound.start();
    await eventually(async () => ((await feed(fallback)).length >= 1 ? true : undefined));
    assert.deepEqual(
      (await feed(support)).map((m) => m.subject),
      ['for support'],
    );
    assert.deepEqual(
      (await feed(fallback)).map((m) => m.subject),
      ['for nobody'],
    );
    assert.deepEqual(await unrouted(main), []);

    // Moved to another server, the destination stops being this server's default: unrouted again.
    const moved = await h.call<Obj>('PATCH', `/api/v1/tenants/${tenantId}/destinations/${fallback}`, {
      serverId: second,
    });
    assert.equal(moved.status, 200, moved.raw);
    const after = await h.call<Obj>('GET', `/api/v1/tenants/${tenantId}/servers/${main}`);
    assert.equal(after.body.defaultDestinationId, null);
    imap.append('support@example.com', 'INBOX', rawMail({ to: 'nobody@example.com', subject: 'lost now' }));
    const lost = await eventually(async () => {
      const list = await unrouted(main);
      return list.length >= 1 ? list : undefined;
    });
    assert.deepEqual(
      lost.map((m) => m.subject),
      ['lost now'],
    );
    assert.equal((await feed(fallback)).length, 1);
  });

  it('trusts a CA file for IMAP TLS, and verifies certificates without one', async () => {
    const certificates = makeTestCertificates();
    const dir = await mkdtemp(join(tmpdir(), 'mailroom-ca-'));
    const proxy = await startTlsProxy(imap.port, certificates.key, certificates.cert);
    try {
      const caFile = join(dir, 'ca.pem');
      await writeFile(caFile, certificates.ca);
      await writeFile(join(dir, 'bogus.pem'), 'not a certificate\n');
      const port = proxy.port;

      // Whatever is wrong, and wherever the path points, the answer is the same sentence: a
      // tenant learns nothing about the engine's file system (the operator's log says why).
      const answers = new Set<string>();
      for (const path of [
        join(dir, 'missing.pem'),
        join(dir, 'bogus.pem'),
        dir,
        '/etc/passwd',
        '/etc',
        '/nonexistent/ca.pem',
        `${dir}/../../etc/ssl/certs/ca-certificates.crt`,
      ]) {
        const res = await h.call<Obj>(
          'POST',
          `/api/v1/tenants/${tenantId}/servers`,
          serverBody('Bad CA', 'support@example.com', { port, secure: true, caFile: path }),
        );
        assert.equal(res.status, 400, res.raw);
        assert.equal(res.body.error.field, 'imap.caFile', res.raw);
        assert.match(res.body.error.message, /MAILROOM_CA_DIR/);
        answers.add(res.body.error.message);
      }
      assert.equal(answers.size, 1, [...answers].join(' | '));
      const reasons = h.logLines.filter((l) => l.includes('a CA file was refused')).join('\n');
      assert.match(reasons, /holds no PEM certificate/);
      assert.match(reasons, /is not inside the CA directory/);

      const untrusted = await create('servers', serverBody('Untrusted', 'support@example.com', { port, secure: true }));
      const trusted = await create(
        'servers',
        serverBody('Trusted', 'other@example.com', { port, secure: true, caFile }),
      );
      const view = await h.call<Obj>('GET', `/api/v1/tenants/${tenantId}/servers/${trusted}`);
      assert.equal(view.body.imap.caFile, caFile);
      const destination = await create('destinations', {
        name: 'Other',
        address: 'other@example.com',
        serverId: trusted,
      });
      imap.append('other@example.com', 'INBOX', rawMail({ to: 'other@example.com', subject: 'over TLS' }));
      await h.inbound.start();
      const routed = await eventually(async () => {
        const list = await feed(destination);
        return list.length >= 1 ? list : undefined;
      });
      assert.equal(routed[0]?.subject, 'over TLS');
      await eventually(async () => (h.inbound.status(untrusted).state === 'connectError' ? true : undefined));
      assert.match(
        String(h.inbound.status(untrusted).lastError),
        /certificate|self.signed|issuer/i,
        'without the CA file the certificate is refused',
      );
    } finally {
      await h.inbound.stop();
      await proxy.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
