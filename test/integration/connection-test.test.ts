import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { startFakeImap, type FakeImapServer } from '../../src/harness/fake-imap/index.js';
import { startSmtpHarness, type SmtpHarness } from '../../src/harness/smtp-harness.js';
import { FAST_INBOUND, openApiHarness, type ApiHarness } from '../support/api-harness.js';
import { startConnectProxy } from '../support/connect-proxy.js';
import { loopbackImap } from '../support/fixtures.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON answers in tests

/** "Test connection" (POST …/servers/{id}/test): both sides log in as the stored settings say, nothing is read or sent. */
describe('e-mail server connection test [pglite]', () => {
  let h: ApiHarness;
  let imap: FakeImapServer;
  let smtp: SmtpHarness;
  let tenantId: string;

  beforeEach(async () => {
    h = await openApiHarness('pglite');
    imap = await startFakeImap({ users: [{ user: 'box@example.com', password: 'imap-secret' }] });
    smtp = await startSmtpHarness({ users: [{ user: 'sender@example.com', password: 'smtp-secret' }] });
    tenantId = (await h.call<Obj>('POST', '/api/v1/tenants', { name: 'Test' })).body.id;
  });
  afterEach(async () => {
    await h.close();
    await imap.close();
    await smtp.close();
  });

  async function server(imapPassword: string, smtpPassword: string): Promise<string> {
    const res = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/servers`, {
      name: `Server ${randomUUID().slice(0, 8)}`,
      enabled: false,
      imap: loopbackImap(imap.port, 'box@example.com', imapPassword),
      smtp: {
        host: '127.0.0.1',
        port: smtp.port,
        auth: { mode: 'custom', method: 'password', user: 'sender@example.com', password: smtpPassword },
      },
    });
    assert.equal(res.status, 201, res.raw);
    return res.body.id as string;
  }

  const test = (serverId: string): Promise<{ status: number; body: Obj; raw: string }> =>
    h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/servers/${serverId}/test`, {});

  it('logs in on both sides with the stored settings, and sends nothing', async () => {
    const res = await test(await server('imap-secret', 'smtp-secret'));
    assert.equal(res.status, 200, res.raw);
    assert.equal(res.body.imap.ok, true, res.raw);
    // Neither fake server offers STARTTLS: the login went in clear, and the answer says so.
    assert.match(
      res.body.imap.detail,
      /logged in as box@example\.com \(without TLS: the server offered no STARTTLS, the credentials went in clear\);/,
    );
    assert.equal(res.body.smtp.ok, true, res.raw);
    assert.equal(
      res.body.smtp.detail,
      'connected and logged in as sender@example.com (without TLS: the server offered no STARTTLS, the credentials went in clear)',
    );
    assert.ok(Number.isInteger(res.body.imap.ms) && Number.isInteger(res.body.smtp.ms));
    assert.equal(smtp.messages.length, 0, 'nothing sent');
    assert.ok(!res.raw.includes('secret'), 'no password in the answer');
  });

  it('says which side refused the login, and why, in plain words', async () => {
    const res = await test(await server('wrong-imap', 'wrong-smtp'));
    assert.equal(res.status, 200, res.raw);
    assert.equal(res.body.imap.ok, false);
    assert.match(res.body.imap.detail, /refused the login/);
    assert.equal(res.body.smtp.ok, false);
    assert.match(res.body.smtp.detail, /535|auth/i);
    assert.ok(!res.raw.includes('wrong-'), 'no password in the answer');
  });

  it('reports a relay that cannot be reached, and 404 for an unknown server', async () => {
    const serverId = await server('imap-secret', 'smtp-secret');
    await smtp.stop();
    const res = await test(serverId);
    assert.equal(res.body.imap.ok, true, res.raw);
    assert.equal(res.body.smtp.ok, false, res.raw);
    assert.match(res.body.smtp.detail, /refused|ECONNREFUSED|connect/i);
    const missing = await test(randomUUID());
    assert.equal(missing.status, 404, missing.raw);
    assert.equal(missing.body.error.code, 'SERVER_NOT_FOUND');
  });

  it('goes through the proxy each server chooses: the default (MAILROOM_MAIL_PROXY), a named one, or none', async () => {
    const main = await startConnectProxy();
    const lab = await startConnectProxy();
    const boxes = await startFakeImap({
      users: ['default', 'lab', 'direct'].map((user) => ({ user: `${user}@example.com`, password: 'imap-secret' })),
    });
    const proxies = { default: main.url, named: new Map([['lab', lab.url]]) };
    const proxied = await openApiHarness('pglite', { ...FAST_INBOUND, proxies }, { proxies });
    try {
      const tenant = (await proxied.call<Obj>('POST', '/api/v1/tenants', { name: 'Proxied' })).body.id as string;
      const create = (user: string, proxy?: string | null) =>
        proxied.call<Obj>('POST', `/api/v1/tenants/${tenant}/servers`, {
          name: `Through ${user}`,
          enabled: false,
          imap: loopbackImap(boxes.port, `${user}@example.com`, 'imap-secret'),
          smtp: {
            host: '127.0.0.1',
            port: smtp.port,
            auth: { mode: 'custom', method: 'password', user: 'sender@example.com', password: 'smtp-secret' },
          },
          ...(proxy !== undefined && { proxy }),
        });
      const tunnelsOf = async (user: string, proxy?: string | null): Promise<[string[], string[]]> => {
        const created = await create(user, proxy);
        assert.equal(created.status, 201, created.raw);
        assert.equal(created.body.proxy, proxy ?? null);
        main.tunnels.length = 0;
        lab.tunnels.length = 0;
        const res = await proxied.call<Obj>('POST', `/api/v1/tenants/${tenant}/servers/${created.body.id}/test`, {});
        assert.deepEqual([res.body.imap.ok, res.body.smtp.ok], [true, true], res.raw);
        return [[...main.tunnels].sort(), [...lab.tunnels].sort()];
      };
      const both = [`127.0.0.1:${boxes.port}`, `127.0.0.1:${smtp.port}`].sort();
      assert.deepEqual(await tunnelsOf('default'), [both, []], 'no choice: the default proxy');
      assert.deepEqual(await tunnelsOf('lab', 'lab'), [[], both], 'the named proxy');
      assert.deepEqual(await tunnelsOf('direct', 'none'), [[], []], 'none: directly');

      const choices = await proxied.call<Obj>('GET', '/api/v1/proxies');
      assert.equal(choices.status, 200, choices.raw);
      assert.deepEqual(choices.body, {
        default: `http://${main.url.host}`,
        named: [{ name: 'lab', proxy: `http://${lab.url.host}` }],
      });

      const unknown = await create('direct', 'elsewhere');
      assert.equal(unknown.status, 400, unknown.raw);
      assert.equal(unknown.body.error.field, 'proxy');
      assert.match(unknown.body.error.message, /no proxy named 'elsewhere'.*'lab'/);
    } finally {
      await proxied.close();
      await boxes.close();
      await main.close();
      await lab.close();
    }
  });
});
