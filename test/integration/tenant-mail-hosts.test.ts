import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { randomUUID } from 'node:crypto';
import { AddressPolicy } from '../../src/shared/address-policy.js';
import { FAST_INBOUND, openApiHarness, type ApiHarness } from '../support/api-harness.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON answers in tests

/** A TCP listener on loopback that greets every connection with `banner` and counts them. */
async function listener(
  banner: Buffer | string = '',
): Promise<{ port: number; connections: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const state = { connections: 0 };
  const server: Server = createServer((socket) => {
    state.connections += 1;
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
    socket.end(banner); // greets, then hangs up: a client learns what answered, and waits for nothing
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return {
    port: (server.address() as AddressInfo).port,
    get connections() {
      return state.connections;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((done) => server.close(() => done()));
    },
  };
}

function body(imapHost: string, smtpHost: string, ports: { imap?: number; smtp?: number } = {}): Obj {
  return {
    name: `Server ${randomUUID().slice(0, 8)}`,
    enabled: false,
    imap: {
      host: imapHost,
      port: ports.imap ?? 993,
      tls: 'none',
      user: `u${randomUUID().slice(0, 8)}@example.com`,
      auth: { method: 'password', password: 'pw' },
    },
    smtp: { host: smtpHost, port: ports.smtp ?? 587, tls: 'none', auth: { mode: 'none' } },
  };
}

/**
 * Issue 24 review, finding A: a tenant's token chose IMAP/SMTP hosts on the engine's own machine
 * and network (127.0.0.1, 169.254.169.254), and "Test connection" scanned ports and grabbed
 * banners. A tenant's hosts follow MAILROOM_MAIL_ALLOW_PRIVATE (public only by default), at save
 * and at each connection; the operator's (administrator token) are not limited. Finding B: other
 * spellings of a host no longer make another account.
 */
describe('IMAP/SMTP hosts a tenant chooses [pglite]', function () {
  this.timeout(60_000);
  let h: ApiHarness;
  let tenantId: string;
  let token: string;
  const base = (): string => `/api/v1/tenants/${tenantId}/servers`;

  beforeEach(async () => {
    h = await openApiHarness('pglite', FAST_INBOUND, {}, {}, undefined, { mailAddresses: AddressPolicy.strict() });
    tenantId = (await h.call<Obj>('POST', '/api/v1/tenants', { name: 'B' })).body.id as string;
    token = (await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/tokens`, { name: 'tenant B' })).body
      .token as string;
  });
  afterEach(async () => h.close());

  it('refuses a loopback, private or metadata host in any spelling at save, naming the field', async () => {
    for (const host of [
      '127.0.0.1',
      '127.1',
      '0x7f.0.0.1',
      '127.0.0.01',
      '::ffff:127.0.0.1',
      'localhost',
      '169.254.169.254',
      '10.0.0.5',
      '[::1]'.slice(1, -1),
    ]) {
      const res = await h.call<Obj>('POST', base(), body(host, '203.0.113.11'), token);
      assert.equal(res.status, 400, `${host}: ${res.raw}`);
      assert.equal(res.body.error.code, 'VALIDATION_FAILED');
      assert.equal(res.body.error.field, 'imap.host', host);
      assert.match(res.body.error.message, /MAILROOM_MAIL_ALLOW_PRIVATE/);
    }
    const smtp = await h.call<Obj>('POST', base(), body('203.0.113.10', '169.254.169.254'), token);
    assert.equal(smtp.status, 400, smtp.raw);
    assert.equal(smtp.body.error.field, 'smtp.host');

    const mine = await h.call<Obj>('POST', base(), body('203.0.113.10', '203.0.113.11'), token);
    assert.equal(mine.status, 201, mine.raw);
    assert.equal((await h.store.servers.require(tenantId, mine.body.id)).hostsByTenant, true);
    const moved = await h.call<Obj>('PATCH', `${base()}/${mine.body.id}`, { smtp: { host: '127.1' } }, token);
    assert.equal(moved.status, 400, moved.raw);
    assert.equal(moved.body.error.field, 'smtp.host');
    const copied = await h.call<Obj>(
      'POST',
      `${base()}/${mine.body.id}/copy`,
      {
        name: 'Copy',
        imap: { host: '0x7f.1', user: 'other@example.com', auth: { method: 'password', password: 'pw' } },
      },
      token,
    );
    assert.equal(copied.status, 400, copied.raw);
    assert.equal(copied.body.error.field, 'imap.host');
  });

  it("leaves the operator's hosts to the operator; a tenant moving one to another port is held to the policy", async () => {
    const admin = await h.call<Obj>('POST', base(), body('127.0.0.1', '127.0.0.1'));
    assert.equal(admin.status, 201, admin.raw);
    const id = admin.body.id as string;
    assert.equal((await h.store.servers.require(tenantId, id)).hostsByTenant, false);
    // Other changes by the tenant keep the operator's hosts usable.
    const renamed = await h.call<Obj>('PATCH', `${base()}/${id}`, { name: 'Renamed by B' }, token);
    assert.equal(renamed.status, 200, renamed.raw);
    assert.equal((await h.store.servers.require(tenantId, id)).hostsByTenant, false);
    // Another port of the operator's loopback host is a port scan.
    const scan = await h.call<Obj>('PATCH', `${base()}/${id}`, { smtp: { port: 3306 } }, token);
    assert.equal(scan.status, 400, scan.raw);
    assert.equal(scan.body.error.field, 'imap.host');
    // The operator naming both hosts takes them over again.
    const mine = await h.call<Obj>('POST', base(), body('203.0.113.10', '203.0.113.11'), token);
    const taken = await h.call<Obj>('PATCH', `${base()}/${mine.body.id}`, {
      imap: { host: '127.0.0.1', auth: { method: 'password', password: 'pw' } },
      smtp: { host: '127.0.0.1' },
    });
    assert.equal(taken.status, 200, taken.raw);
    assert.equal((await h.store.servers.require(tenantId, mine.body.id)).hostsByTenant, false);
  });

  it('Test connection does not connect to a tenant-chosen host the policy refuses (no scan, no banner)', async () => {
    const imap = await listener('* OK internal IMAP ready\r\n');
    const smtp = await listener('220 internal.example ESMTP\r\n');
    try {
      const created = await h.call<Obj>(
        'POST',
        base(),
        body('127.0.0.1', '127.0.0.1', { imap: imap.port, smtp: smtp.port }),
      );
      assert.equal(created.status, 201, created.raw);
      // A host the tenant chose under an earlier, wider policy (or a name that now resolves elsewhere).
      const row = await h.store.servers.require(tenantId, created.body.id);
      await h.store.servers.replace({ ...row, hostsByTenant: true });
      const res = await h.call<Obj>('POST', `${base()}/${row.id}/test`, {}, token);
      assert.equal(res.status, 200, res.raw);
      assert.equal(res.body.imap.ok, false, res.raw);
      assert.equal(res.body.smtp.ok, false, res.raw);
      assert.match(res.body.imap.detail, /IMAP host leads to an address .* \(loopback\).*MAILROOM_MAIL_ALLOW_PRIVATE/);
      assert.match(res.body.smtp.detail, /SMTP host leads to an address .* \(loopback\).*MAILROOM_MAIL_ALLOW_PRIVATE/);
      assert.equal(imap.connections, 0, 'no IMAP connection was made');
      assert.equal(smtp.connections, 0, 'no SMTP connection was made');
      // The operator's own server (the flag cleared) connects as before.
      await h.store.servers.replace({ ...row, hostsByTenant: false });
      const operator = await h.call<Obj>('POST', `${base()}/${row.id}/test`, {});
      assert.ok(imap.connections >= 1 && smtp.connections >= 1, operator.raw);
    } finally {
      await imap.close();
      await smtp.close();
    }
  });

  it('the watcher does not connect to a tenant-chosen host the policy refuses, and says why in the status', async () => {
    const imap = await listener('* OK internal IMAP ready\r\n');
    try {
      const created = await h.call<Obj>('POST', base(), body('127.0.0.1', '127.0.0.1', { imap: imap.port }));
      const row = await h.store.servers.require(tenantId, created.body.id);
      await h.store.servers.replace({ ...row, enabled: true, hostsByTenant: true });
      await h.inbound.start();
      let status: Obj = {};
      for (let i = 0; i < 100 && !status.inbound?.lastError; i++) {
        status = (await h.call<Obj>('GET', `${base()}/${row.id}/status`, undefined, token)).body;
        if (!status.inbound?.lastError) await new Promise((done) => setTimeout(done, 100));
      }
      assert.match(
        String(status.inbound?.lastError),
        /IMAP host leads to an address .*MAILROOM_MAIL_ALLOW_PRIVATE/,
        JSON.stringify(status),
      );
      assert.equal(imap.connections, 0, 'no connection was made');
    } finally {
      await h.inbound.stop();
      await imap.close();
    }
  });

  it("Test connection names what answered on the SMTP side, never echoing a foreign server's bytes", async () => {
    const banners: [Buffer | string, RegExp, string][] = [
      ['* OK [CAPABILITY IMAP4rev1] secret-imap.internal ready\r\n', /greets as an IMAP server/, 'secret-imap'],
      [
        Buffer.from('R\u0000\u0000\u0000\n5.5.5-10.6.12-MariaDB-secret\u0000\u0001\u0002\u0003', 'latin1'),
        /binary protocol/,
        'MariaDB',
      ],
      ['SSH-2.0-OpenSSH_9.6 secret-host\r\n', /greets as an SSH server/, 'OpenSSH'],
    ];
    for (const [banner, said, hidden] of banners) {
      const foreign = await listener(banner);
      try {
        const created = await h.call<Obj>('POST', base(), body('127.0.0.1', '127.0.0.1', { smtp: foreign.port }));
        assert.equal(created.status, 201, created.raw);
        const res = await h.call<Obj>('POST', `${base()}/${created.body.id}/test`, {}, token);
        assert.equal(res.body.smtp.ok, false, res.raw);
        assert.match(res.body.smtp.detail, said, res.raw);
        assert.match(res.body.smtp.detail, /does not answer as an SMTP server/);
        assert.ok(!res.raw.includes(hidden), `no bytes of the banner: ${res.raw}`);
      } finally {
        await foreign.close();
      }
    }
  });

  it('another spelling of a host is the same account (finding B)', async () => {
    const other = (await h.call<Obj>('POST', '/api/v1/tenants', { name: 'A' })).body.id as string;
    const first = body('127.0.0.1', '127.0.0.1');
    first.imap.user = 'shared@example.com';
    assert.equal((await h.call<Obj>('POST', `/api/v1/tenants/${other}/servers`, first)).status, 201);
    for (const host of [
      '127.1',
      '0x7f.0.0.1',
      '::ffff:127.0.0.1',
      '127.0.0.01',
      'localhost',
      'LOCALHOST.',
      '2130706433',
    ]) {
      const again = body(host, '127.0.0.1');
      again.imap.user = 'Shared@Example.com';
      const res = await h.call<Obj>('POST', base(), again);
      assert.equal(res.status, 409, `${host}: ${res.raw}`);
      assert.equal(res.body.error.code, 'ACCOUNT_IN_USE', host);
    }
  });
});
