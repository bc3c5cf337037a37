import assert from 'node:assert/strict';
import { startFakeImap, type FakeImapServer } from '../../src/harness/fake-imap/index.js';
import { startSmtpHarness, type SmtpHarness } from '../../src/harness/smtp-harness.js';
import { FAST_INBOUND, openApiHarness, type ApiHarness } from '../support/api-harness.js';
import { loopbackImap } from '../support/fixtures.js';
import { eventually } from '../support/mail.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON answers in tests

/**
 * Issue 30, items 4 and 5: a server's status shows either the current problem or when the last
 * one ended, never a mix (an `ok` queue with a past `resumeAt` and an old `lastErrorAt`, a watched
 * mailbox with `lastErrorAt` but `lastError: null`), and says how new mail is learned.
 */
describe('server status: current problem or when it ended, and how new mail is learned [pglite]', function () {
  this.timeout(90_000);
  let h: ApiHarness;
  let imap: FakeImapServer;
  let smtp: SmtpHarness;
  let tenantId: string;

  beforeEach(async () => {
    h = await openApiHarness('pglite', FAST_INBOUND, { probeIntervalMs: 300 });
    imap = await startFakeImap({ users: [{ user: 'box@example.com', password: 'pw' }] });
    smtp = await startSmtpHarness();
    tenantId = (await h.call<Obj>('POST', '/api/v1/tenants', { name: 'Status' })).body.id;
  });
  afterEach(async () => {
    await h.inbound.stop();
    await h.close();
    await imap.close();
    await smtp.close();
  });

  async function server(enabled: boolean, smtpPort = smtp.port): Promise<{ serverId: string; destinationId: string }> {
    const res = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/servers`, {
      name: 'Box',
      enabled,
      imap: loopbackImap(imap.port, 'box@example.com', 'pw'),
      smtp: { host: '127.0.0.1', port: smtpPort, auth: { mode: 'none' } },
    });
    assert.equal(res.status, 201, res.raw);
    const destination = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/destinations`, {
      name: 'Box',
      address: 'box@example.com',
      serverId: res.body.id,
    });
    assert.equal(destination.status, 201, destination.raw);
    return { serverId: res.body.id, destinationId: destination.body.id };
  }

  const status = async (serverId: string): Promise<Obj> =>
    (await h.call<Obj>('GET', `/api/v1/tenants/${tenantId}/servers/${serverId}/status`)).body;

  it('outbound: a paused queue that resumes shows when the pause ended, not its resumeAt and last error', async () => {
    const { serverId, destinationId } = await server(false);
    await smtp.stop();
    await h.outbound.start();
    const sent = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/destinations/${destinationId}/outbound`, {
      to: ['customer@example.net'],
      subject: 'while down',
      text: 'x',
    });
    assert.equal(sent.status, 202, sent.raw);
    const paused = await eventually(async () => {
      const queue = (await status(serverId)).outbound.queue;
      return queue?.state === 'paused' ? queue : undefined;
    });
    assert.ok(paused.lastErrorAt !== null && paused.resumeAt !== null, JSON.stringify(paused));
    assert.equal(paused.lastProblemEndedAt, null, 'a current problem is not also an ended one');

    await smtp.start();
    await smtp.waitFor(1, 20_000);
    const ok = await eventually(async () => {
      const queue = (await status(serverId)).outbound.queue;
      return queue?.state === 'ok' && queue.depth === 0 ? queue : undefined;
    });
    assert.equal(ok.resumeAt, null, JSON.stringify(ok));
    assert.equal(ok.lastErrorAt, null, JSON.stringify(ok));
    assert.ok(ok.lastProblemEndedAt !== null && Date.parse(ok.lastProblemEndedAt) >= Date.parse(paused.lastErrorAt));
  });

  it('outbound: new settings end a pause at once, without leaving its resumeAt behind', async () => {
    const down = await startSmtpHarness();
    const downPort = down.port;
    await down.close();
    const { serverId, destinationId } = await server(false, downPort);
    await h.outbound.start();
    await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/destinations/${destinationId}/outbound`, {
      to: ['customer@example.net'],
      text: 'x',
    });
    await eventually(async () => ((await status(serverId)).outbound.queue?.state === 'paused' ? true : undefined));
    const patched = await h.call<Obj>('PATCH', `/api/v1/tenants/${tenantId}/servers/${serverId}`, {
      smtp: { port: smtp.port },
    });
    assert.equal(patched.status, 200, patched.raw);
    await smtp.waitFor(1, 20_000);
    const queue = (await status(serverId)).outbound.queue;
    assert.equal(queue.state, 'ok');
    assert.equal(queue.resumeAt, null, JSON.stringify(queue));
    assert.equal(queue.lastErrorAt, null, JSON.stringify(queue));
    assert.notEqual(queue.lastProblemEndedAt, null);
  });

  it('inbound: after a refused login, watching again shows when the problem ended and how new mail is learned', async () => {
    imap.faults.reply('LOGIN', 'NO', { times: 2 });
    imap.faults.reply('AUTHENTICATE', 'NO', { times: 2 });
    const { serverId } = await server(true);
    await h.inbound.start();
    const failing = await eventually(async () => {
      const inbound = (await status(serverId)).inbound;
      return inbound.lastError !== null ? inbound : undefined;
    });
    assert.notEqual(failing.lastErrorAt, null);
    assert.equal(failing.lastProblemEndedAt, null);

    const watching = await eventually(async () => {
      const inbound = (await status(serverId)).inbound;
      return inbound.state === 'idle' ? inbound : undefined;
    });
    assert.equal(watching.lastError, null);
    assert.equal(watching.lastErrorAt, null, `no error time without an error: ${JSON.stringify(watching)}`);
    assert.ok(watching.lastProblemEndedAt !== null);
    assert.deepEqual(watching.newMail, { by: 'idle', pollIntervalMs: FAST_INBOUND.safetyPollMs });
  });
});
