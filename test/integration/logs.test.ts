import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { startSmtpHarness, type SmtpHarness } from '../../src/harness/smtp-harness.js';
import { openApiHarness, type ApiHarness } from '../support/api-harness.js';
import { addCleanup } from '../support/cleanup.js';
import { eventually } from '../support/mail.js';
import { postgresMissing, skipWithout } from '../support/requirements.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON answers and log lines in tests

/**
 * Logs a person can follow: a line per request (the access log), a line per message sent or given
 * up with the server's reply, and server-scoped lines that name the tenant and the server.
 */
describe('logs a person can follow', function () {
  this.timeout(60_000);
  let h: ApiHarness;
  let tenantId: string;

  before(async function () {
    skipWithout(this, await postgresMissing());
  });
  beforeEach(async () => {
    h = await openApiHarness('postgres');
    tenantId = (await h.call<Obj>('POST', '/api/v1/tenants', { name: 'Support EMEA' })).body.id;
  });
  afterEach(async () => {
    await h.close();
  });

  const entries = (): Obj[] => h.logLines.map((l) => JSON.parse(l) as Obj);

  async function sendingAccount(port: number): Promise<{ serverId: string; destinationId: string }> {
    const server = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/servers`, {
      name: 'Main mailbox',
      enabled: false,
      imap: { host: '127.0.0.1', port: 1, user: 'box@example.com', auth: { method: 'password', password: 'x' } },
      smtp: { host: '127.0.0.1', port, auth: { mode: 'none' } },
    });
    assert.equal(server.status, 201, server.raw);
    const destination = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/destinations`, {
      name: 'Support',
      address: 'support@example.com',
      serverId: server.body.id,
    });
    return { serverId: server.body.id, destinationId: destination.body.id };
  }

  it('logs every request at info: method, route, status, time and the token by name, never the token', async () => {
    const created = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/tokens`, { name: 'EMEA desk' });
    assert.equal(created.status, 201, created.raw);
    const token = created.body.token as string;
    assert.equal((await h.call('GET', `/api/v1/tenants/${tenantId}`, undefined, token)).status, 200);
    assert.equal((await h.call('GET', `/api/v1/tenants/${tenantId}/servers/nope`, undefined, token)).status, 400);
    assert.equal((await h.call('GET', '/api/v1/tenants', undefined, 'wrong-token')).status, 401);

    const requests = entries().filter((e) => e.msg === 'request');
    const read = requests.find((e) => e.route === '/api/v1/tenants/:tenantId' && e.method === 'GET');
    assert.ok(read, JSON.stringify(requests));
    assert.equal(read.level, 30, 'at info');
    assert.equal(read.status, 200);
    assert.equal(typeof read.ms, 'number');
    assert.equal(read.tokenName, 'EMEA desk');
    assert.equal(read.tenantId, tenantId);
    const invalid = requests.find((e) => e.route === '/api/v1/tenants/:tenantId/servers/:serverId');
    assert.equal(invalid?.status, 400);
    const refused = requests.find((e) => e.route === '/api/v1/tenants' && e.status === 401);
    assert.ok(refused && refused.tokenName === undefined, 'an unknown token is not named');
    const admin = requests.find((e) => e.method === 'POST' && e.route === '/api/v1/tenants/:tenantId/tokens');
    assert.equal(admin?.tokenName, 'administrator (MAILROOM_API_TOKEN)');
    for (const line of h.logLines) {
      assert.ok(!line.includes(token) && !line.includes(h.adminToken) && !line.includes('wrong-token'), line);
    }
  });

  it('logs each message sent at info with the SMTP reply, naming tenant and server by name and id', async () => {
    const smtp: SmtpHarness = await startSmtpHarness({});
    addCleanup(() => smtp.close());
    const { serverId, destinationId } = await sendingAccount(smtp.port);
    await h.outbound.start();
    const accepted = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/destinations/${destinationId}/outbound`, {
      to: ['customer@example.net'],
      subject: 'Hello',
      text: 'Body',
    });
    assert.equal(accepted.status, 202, accepted.raw);
    const sent = await eventually(async () =>
      entries().find((e) => e.msg === 'message sent' && e.outboundId === accepted.body.id),
    );
    assert.equal(sent.level, 30);
    assert.match(sent.reply, /^250/);
    assert.equal(sent.tenantId, tenantId);
    assert.equal(sent.tenantName, 'Support EMEA');
    assert.equal(sent.serverId, serverId);
    assert.equal(sent.serverName, 'Main mailbox');
  });

  it('logs a message given up with the reply and the names', async () => {
    // A relay that refuses every recipient for good (550).
    const relay = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS'],
      onRcptTo(_address, _session, callback) {
        callback(Object.assign(new Error('5.1.1 no such mailbox here'), { responseCode: 550 }));
      },
    });
    relay.listen(0, '127.0.0.1');
    await once(relay.server, 'listening');
    addCleanup(() => new Promise<void>((resolve) => relay.close(() => resolve())));
    const { destinationId } = await sendingAccount((relay.server.address() as AddressInfo).port);
    await h.outbound.start();
    const accepted = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/destinations/${destinationId}/outbound`, {
      to: ['nobody@example.net'],
      subject: 'Hello',
      text: 'Body',
    });
    assert.equal(accepted.status, 202, accepted.raw);
    const failed = await eventually(async () =>
      entries().find((e) => e.outboundId === accepted.body.id && /dead-lettered/.test(e.msg as string)),
    );
    assert.ok(failed.level >= 30);
    assert.match(failed.reply, /550/);
    assert.equal(failed.tenantName, 'Support EMEA');
    assert.equal(failed.serverName, 'Main mailbox');
  });

  it('names tenant and server by name in the mailbox watcher’s warnings', async () => {
    const { serverId } = await sendingAccount(1);
    // Enabled, its IMAP side on a port where nothing listens: the watcher warns.
    const enabled = await h.call<Obj>('PATCH', `/api/v1/tenants/${tenantId}/servers/${serverId}`, { enabled: true });
    assert.equal(enabled.status, 200, enabled.raw);
    await h.inbound.start();
    const warning = await eventually(async () =>
      entries().find((e) => e.msg === 'mailbox connection failed' && e.serverId === serverId),
    );
    assert.equal(warning.level, 40);
    assert.equal(warning.tenantId, tenantId);
    assert.equal(warning.tenantName, 'Support EMEA');
    assert.equal(warning.serverName, 'Main mailbox');
  });
});
