import assert from 'node:assert/strict';
import { startSmtpHarness, type SmtpHarness } from '../../src/harness/smtp-harness.js';
import { FAST_INBOUND, openApiHarness, type ApiHarness } from '../support/api-harness.js';
import { startConnectProxy } from '../support/connect-proxy.js';
import { eventually } from '../support/mail.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON answers in tests

/** A server's choice of proxy (MAILROOM_PROXIES by name) when sending, and when the engine no longer has it. */
describe('e-mail server proxy choice, outbound [pglite]', () => {
  let h: ApiHarness;
  let smtp: SmtpHarness;
  let lab: Awaited<ReturnType<typeof startConnectProxy>>;
  let tenantId: string;

  beforeEach(async () => {
    lab = await startConnectProxy();
    smtp = await startSmtpHarness({});
    const proxies = { named: new Map([['lab', lab.url]]) };
    h = await openApiHarness('pglite', { ...FAST_INBOUND, proxies }, { proxies });
    tenantId = (await h.call<Obj>('POST', '/api/v1/tenants', { name: 'Proxied' })).body.id;
  });
  afterEach(async () => {
    await h.close();
    await smtp.close();
    await lab.close();
  });

  it('sends through the named proxy; a name the engine lost pauses the queue, saying so, until another is chosen', async () => {
    const server = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/servers`, {
      name: 'Relay',
      enabled: false,
      imap: { host: '127.0.0.1', port: 1, user: 'box@example.com', auth: { method: 'password', password: 'x' } },
      smtp: { host: '127.0.0.1', port: smtp.port, auth: { mode: 'none' } },
      proxy: 'lab',
    });
    assert.equal(server.status, 201, server.raw);
    const serverId = server.body.id as string;
    const destination = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/destinations`, {
      name: 'Support',
      address: 'support@example.com',
      serverId,
    });
    assert.equal(destination.status, 201, destination.raw);
    const outbound = `/api/v1/tenants/${tenantId}/destinations/${destination.body.id}/outbound`;
    await h.outbound.start();

    const first = await h.call<Obj>('POST', outbound, { to: ['a@example.net'], text: 'via lab' });
    assert.equal(first.status, 202, first.raw);
    await smtp.waitFor(1, 10_000);
    assert.deepEqual(lab.tunnels, [`127.0.0.1:${smtp.port}`]);

    // The configuration changed under the stored choice (as after a restart without it).
    await h.store.query(`UPDATE email_servers SET proxy = 'gone', updated_at = now() WHERE id = $1`, [serverId]);
    const kept = await h.call<Obj>('PATCH', `/api/v1/tenants/${tenantId}/servers/${serverId}`, {
      smtp: { rateLimitPerHour: 100 },
    });
    assert.equal(kept.status, 200, kept.raw);
    assert.equal(kept.body.proxy, 'gone', 'other changes are not blocked by it');
    const refused = await h.call<Obj>('PATCH', `/api/v1/tenants/${tenantId}/servers/${serverId}`, { proxy: 'gone2' });
    assert.equal(refused.status, 400, refused.raw);
    assert.equal(refused.body.error.field, 'proxy');

    await h.outbound.reconcile();
    const second = await h.call<Obj>('POST', outbound, { to: ['b@example.net'], text: 'waits' });
    assert.equal(second.status, 202, second.raw);
    const paused = await eventually(async () => {
      const s = await h.call<Obj>('GET', `/api/v1/tenants/${tenantId}/servers/${serverId}/status`);
      return s.body.outbound.queue?.state === 'paused' ? s.body.outbound.queue : undefined;
    });
    assert.match(paused.lastReply, /proxy 'gone'.*not configured/);
    assert.equal(smtp.messages.length, 1, 'nothing sent another way');

    // The IMAP password was entered for connections through the proxy: it does not follow a change of proxy.
    const url = `/api/v1/tenants/${tenantId}/servers/${serverId}`;
    const unsaid = await h.call<Obj>('PATCH', url, { proxy: 'none' });
    assert.equal(unsaid.status, 400, unsaid.raw);
    assert.equal(unsaid.body.error.field, 'imap.auth.password');
    assert.match(unsaid.body.error.message, /the IMAP proxy changed/);
    const direct = await h.call<Obj>('PATCH', url, {
      proxy: 'none',
      imap: { auth: { method: 'password', password: 'x' } },
    });
    assert.equal(direct.status, 200, direct.raw);
    await h.outbound.reconcile();
    await smtp.waitFor(2, 10_000);
    assert.deepEqual(smtp.messages[1]?.envelope.to, ['b@example.net']);
    assert.equal(lab.tunnels.length, 1, 'directly, not through the proxy');
  });
});
