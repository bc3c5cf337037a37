import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startFakeImap, type FakeImapServer } from '../../src/harness/fake-imap/index.js';
import { startSmtpHarness, type SmtpHarness } from '../../src/harness/smtp-harness.js';
import { addPlainServer, forEachBackend, openApiHarness, type ApiHarness } from '../support/api-harness.js';
import { FakeClock } from '../support/fake-clock.js';
import { routedMessageRow } from '../support/routed-messages.js';
import { eventually, rawMail } from '../support/mail.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON answers in tests

/** An HTTP receiver on 127.0.0.1:0 answering 500 `failures` times, then 200. */
async function startReceiver(failures: number): Promise<{ url: string; answers: number[]; server: Server }> {
  const answers: number[] = [];
  let remaining = failures;
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const status = remaining > 0 ? 500 : 200;
      if (remaining > 0) remaining -= 1;
      answers.push(status);
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, answers, server };
}

forEachBackend('message trace', (kind) => {
  let h: ApiHarness;
  let imap: FakeImapServer;
  let smtp: SmtpHarness;
  let receiver: Awaited<ReturnType<typeof startReceiver>> | undefined;

  let clock: FakeClock;

  beforeEach(async function () {
    this.timeout(120_000); // the first opens the embedded database
    clock = new FakeClock(Date.now());
    h = await openApiHarness(kind, undefined, {}, {}, undefined, {}, clock);
    imap = await startFakeImap({ users: [{ user: 'support@example.com', password: 'imap-pass' }] });
    smtp = await startSmtpHarness({ users: [{ user: 'relay', password: 'relay-pass' }] });
  });
  afterEach(async function () {
    if (this.currentTest?.state === 'failed') {
      process.stdout.write(`--- engine log of the failed test:\n${h.logLines.slice(-30).join('\n')}\n`);
    }
    await h.close();
    await imap.close();
    await smtp.close();
    receiver?.server.close();
    receiver = undefined;
  });

  async function tenantWithServer(name: string): Promise<{ tenantId: string; serverId: string; token: string }> {
    const tenant = await h.call<Obj>('POST', '/api/v1/tenants', { name });
    const tenantId = tenant.body.id as string;
    const token = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/tokens`, { name: `${name} agent desk` });
    const server = await h.call<Obj>(
      'POST',
      `/api/v1/tenants/${tenantId}/servers`,
      {
        name: 'Main',
        imap: {
          host: '127.0.0.1',
          port: imap.port,
          secure: false,
          user: 'support@example.com',
          auth: { method: 'password', password: 'imap-pass' },
        },
        smtp: { host: '127.0.0.1', port: smtp.port, auth: { mode: 'custom', user: 'relay', password: 'relay-pass' } },
      },
      token.body.token,
    );
    assert.equal(server.status, 201, server.raw);
    return { tenantId, serverId: server.body.id, token: token.body.token };
  }

  it('shows a routed message delivered by webhook after two failures, claimed, acknowledged and replied to (451, then sent), in order', async function () {
    this.timeout(60_000);
    receiver = await startReceiver(2);
    const { tenantId, serverId, token } = await tenantWithServer('Trace');
    const destination = await h.call<Obj>(
      'POST',
      `/api/v1/tenants/${tenantId}/destinations`,
      {
        name: 'Support',
        address: 'support@example.com',
        serverId,
        webhookUrl: receiver.url,
        webhookSecret: 'trace-webhook-secret-0123456789',
      },
      token,
    );
    assert.equal(destination.status, 201, destination.raw);
    const destinationId = destination.body.id as string;
    await h.inbound.start();
    h.webhooks.start();
    await h.outbound.start();
    imap.append(
      'support@example.com',
      'INBOX',
      rawMail({
        to: 'Support <SUPPORT@example.com>',
        subject: 'Nobody answered on Monday',
        messageId: 'monday.1@example.net',
      }),
    );
    const messagesUrl = `/api/v1/tenants/${tenantId}/destinations/${destinationId}/messages`;
    const [item] = await eventually(async () => {
      const res = await h.call<Obj>('GET', messagesUrl, undefined, token);
      return res.body.messages?.length === 1 ? res.body.messages : undefined;
    });
    const messageId = item.id as string;
    await eventually(async () => (receiver?.answers.includes(200) ? true : undefined), 15_000);
    const claimed = await h.call<Obj>('POST', `${messagesUrl}/${messageId}/claim`, { agent: 'alice' }, token);
    assert.equal(claimed.status, 200, claimed.raw);
    const acked = await h.call<Obj>('POST', `${messagesUrl}/${messageId}/ack`, {}, token);
    assert.equal(acked.status, 200, acked.raw);
    // The relay says 451 once, then takes the reply (retried a minute later on outbound's clock,
    // which starts from now: its events then fall after the inbound ones).
    smtp.faults.replyAt('mailFrom', 451, '4.3.0 try again later', { times: 1 });
    clock.advance(Math.max(0, Date.now() - clock.now()));
    const reply = await h.call<Obj>(
      'POST',
      `/api/v1/tenants/${tenantId}/destinations/${destinationId}/outbound`,
      { inReplyTo: messageId, text: 'Sorry for the wait.' },
      token,
    );
    assert.equal(reply.status, 202, reply.raw);
    await eventually(async () => {
      const [row] = await h.store.query<{ status: string }>('SELECT status FROM outbound_messages WHERE id = $1', [
        reply.body.id,
      ]);
      return row?.status === 'deferred' ? true : undefined;
    });
    clock.advance(60_000);
    await smtp.waitFor(1, 30_000);

    const url = `/api/v1/tenants/${tenantId}/trace/inbound/${messageId}`;
    const timeline = await eventually(async () => {
      const res = await h.call<Obj>('GET', url, undefined, token);
      return res.body.events?.some((e: Obj) => e.type === 'sent') ? res.body : undefined;
    }, 20_000);
    const types = timeline.events.map((e: Obj) => e.type);
    assert.deepEqual(types, [
      'fetched',
      'classified',
      'routed',
      'webhook-failed',
      'webhook-failed',
      'webhook-delivered',
      'claimed',
      'acknowledged',
      'accepted',
      'reply-accepted',
      'smtp-attempt',
      'sent',
    ]);
    const ev = (type: string, n = 0): Obj => timeline.events.filter((e: Obj) => e.type === type)[n];
    assert.deepEqual(
      { serverId: ev('fetched').detail.serverId, mailbox: ev('fetched').detail.mailbox, uid: ev('fetched').detail.uid },
      { serverId, mailbox: 'INBOX', uid: 1 },
    );
    assert.equal(ev('classified').detail.autoReply, false);
    assert.deepEqual(ev('routed').detail.destinations, [
      { id: destinationId, header: 'to', address: 'support@example.com' },
    ]);
    assert.equal(ev('webhook-failed').detail.status, 500);
    assert.equal(ev('webhook-failed').detail.attempt, 1);
    assert.equal(ev('webhook-failed', 1).detail.attempt, 2);
    assert.deepEqual(
      { status: ev('webhook-delivered').detail.status, attempt: ev('webhook-delivered').detail.attempt },
      { status: 200, attempt: 3 },
    );
    assert.equal(ev('claimed').detail.agent, 'alice');
    assert.equal(ev('claimed').detail.by, 'Trace agent desk');
    assert.equal(ev('acknowledged').detail.by, 'Trace agent desk');
    assert.equal(ev('reply-accepted').detail.outboundId, reply.body.id);
    for (const type of ['accepted', 'smtp-attempt', 'sent']) {
      assert.deepEqual(ev(type).of, { kind: 'outbound', id: reply.body.id }, type);
    }
    assert.equal(ev('smtp-attempt').detail.code, 451);
    assert.match(ev('smtp-attempt').detail.reply, /try again later/);
    assert.equal(ev('smtp-attempt').detail.serverId, serverId);
    assert.equal(ev('sent').detail.code, 250);
    assert.equal(ev('sent').detail.attempt, 2);
    const times = timeline.events.map((e: Obj) => Date.parse(e.at));
    assert.deepEqual(
      times,
      [...times].sort((a, b) => a - b),
      'in time order',
    );

    // The reply's own timeline, and the search finds both by address, Message-ID and subject.
    const out = await h.call<Obj>(
      'GET',
      `/api/v1/tenants/${tenantId}/trace/outbound/${reply.body.id}`,
      undefined,
      token,
    );
    assert.deepEqual(
      out.body.events.map((e: Obj) => e.type),
      ['accepted', 'smtp-attempt', 'sent'],
    );
    assert.equal(out.body.destinationId, destinationId, 'where its fields are read (the console shows them)');
    assert.equal(
      'destinationId' in
        (await h.call<Obj>('GET', `/api/v1/tenants/${tenantId}/trace/inbound/${messageId}`, undefined, token)).body,
      false,
    );
    const search = (q: string) => h.call<Obj>('GET', `/api/v1/tenants/${tenantId}/trace?${q}`, undefined, token);
    const byAddress = await search('address=customer@example.net');
    assert.deepEqual(
      byAddress.body.messages.map((m: Obj) => [m.kind, m.id]),
      [
        ['outbound', reply.body.id],
        ['inbound', messageId],
      ],
    );
    assert.deepEqual(
      (await search('messageId=%3Cmonday.1@example.net%3E')).body.messages.map((m: Obj) => m.id),
      [messageId],
    );
    assert.equal((await search('subject=nobody%20ANSWERED')).body.messages.length, 2);
    assert.equal((await search(`destinationId=${destinationId}&status=routed`)).body.messages.length, 1);
    assert.equal((await search('subject=tuesday')).body.messages.length, 0);
  });

  it('shows a message quarantined for a parse failure with its reason', async () => {
    const { tenantId, serverId, token } = await tenantWithServer('Quarantine');
    await h.call('POST', `/api/v1/tenants/${tenantId}/destinations`, {
      name: 'Support',
      address: 'support@example.com',
      serverId,
    });
    await h.inbound.start();
    // A header block over the parser's limit (1 MB): quarantined, not parsed.
    imap.append(
      'support@example.com',
      'INBOX',
      rawMail({ subject: 'huge', headers: { 'X-Big': 'a'.repeat(1_100_000) } }),
    );
    const hit = await eventually(async () => {
      const res = await h.call<Obj>('GET', `/api/v1/tenants/${tenantId}/trace?status=quarantined`, undefined, token);
      return res.body.messages?.[0];
    }, 30_000);
    const timeline = await h.call<Obj>('GET', `/api/v1/tenants/${tenantId}/trace/inbound/${hit.id}`, undefined, token);
    assert.deepEqual(
      timeline.body.events.map((e: Obj) => e.type),
      ['fetched', 'quarantined'],
    );
    assert.match(timeline.body.events[1].detail.reason, /header-too-large/);
  });

  it("never shows another tenant's messages to a tenant's token", async () => {
    const a = await tenantWithServer('Alpha');
    const server = await h.store.query<{ id: string }>('SELECT id FROM email_servers WHERE tenant_id = $1', [
      a.tenantId,
    ]);
    assert.equal(server.length, 1);
    await h.call('POST', `/api/v1/tenants/${a.tenantId}/destinations`, {
      name: 'Support',
      address: 'support@example.com',
      serverId: a.serverId,
    });
    await h.inbound.start();
    imap.append('support@example.com', 'INBOX', rawMail({ subject: 'private to alpha' }));
    const hit = await eventually(async () => {
      const res = await h.call<Obj>('GET', `/api/v1/tenants/${a.tenantId}/trace`, undefined, a.token);
      return res.body.messages?.[0];
    });
    const b = await h.call<Obj>('POST', '/api/v1/tenants', { name: 'Beta' });
    const bToken = (await h.call<Obj>('POST', `/api/v1/tenants/${b.body.id}/tokens`, { name: 'beta' })).body.token;
    const own = await h.call<Obj>('GET', `/api/v1/tenants/${b.body.id}/trace?subject=private`, undefined, bToken);
    assert.deepEqual(own.body.messages, []);
    const other = await h.call<Obj>('GET', `/api/v1/tenants/${a.tenantId}/trace`, undefined, bToken);
    assert.equal(other.status, 404);
    const timeline = await h.call<Obj>(
      'GET',
      `/api/v1/tenants/${b.body.id}/trace/inbound/${hit.id}`,
      undefined,
      bToken,
    );
    assert.equal(timeline.status, 404);
    assert.ok(!timeline.raw.includes('private to alpha'));
  });
});

forEachBackend('unrouted and quarantined mail', (kind) => {
  let h: ApiHarness;
  let imap: FakeImapServer;

  beforeEach(async function () {
    this.timeout(120_000); // the first opens the embedded database
    h = await openApiHarness(kind);
    imap = await startFakeImap({ users: [{ user: 'support@example.com', password: 'imap-pass' }] });
  });
  afterEach(async () => {
    await h.close();
    await imap.close();
  });

  async function setUp(): Promise<{ tenantId: string; serverId: string; token: string; tokenId: string }> {
    const tenantId = (await h.call<Obj>('POST', '/api/v1/tenants', { name: 'Held' })).body.id as string;
    const token = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/tokens`, { name: 'Held desk' });
    const serverId = await addPlainServer(h, tenantId, imap.port);
    return { tenantId, serverId, token: token.body.token, tokenId: token.body.id };
  }

  it('releases a message quarantined for a parse failure, and the timeline shows both', async () => {
    const { tenantId, serverId, token } = await setUp();
    const destination = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/destinations`, {
      name: 'Support',
      address: 'support@example.com',
      serverId,
    });
    // Stored as ingest stores a message whose parser worker crashed: quarantined, with its source.
    const id = randomUUID();
    const raw = Buffer.from(
      rawMail({ to: 'support@example.com', subject: 'crashed the parser' }).replace(/\r?\n/g, '\r\n'),
    );
    await h.store.transaction(async (tx) => {
      await tx.messages.insertBatch([
        {
          row: {
            ...routedMessageRow({ tenantId, serverId, destinationId: destination.body.id }, 1),
            id,
            status: 'quarantined',
            quarantineReason: 'worker-crashed: the parser worker ended',
            subject: '',
            messageIdHeader: null,
          },
          raw,
          trace: { type: 'quarantined', detail: null },
        },
      ]);
    });
    const released = await h.call<Obj>(
      'POST',
      `/api/v1/tenants/${tenantId}/servers/${serverId}/messages/${id}/release`,
      {},
      token,
    );
    assert.equal(released.status, 200, released.raw);
    assert.deepEqual(released.body.destinationIds, [destination.body.id]);
    const feed = await h.call<Obj>('GET', `/api/v1/tenants/${tenantId}/destinations/${destination.body.id}/messages`);
    assert.deepEqual(
      feed.body.messages.map((m: Obj) => [m.id, m.subject]),
      [[id, 'crashed the parser']],
    );
    const timeline = await h.call<Obj>('GET', `/api/v1/tenants/${tenantId}/trace/inbound/${id}`, undefined, token);
    const types = timeline.body.events.map((e: Obj) => e.type);
    assert.deepEqual(types.slice(-3), ['quarantined', 'released', 'routed']);
    const events = timeline.body.events as Obj[];
    assert.match(events[types.indexOf('quarantined')]?.detail.reason, /worker-crashed/);
    assert.equal(events[types.indexOf('released')]?.detail.by, 'Held desk');
    assert.deepEqual(events[types.length - 1]?.detail.destinations, [
      { id: destination.body.id, header: 'to', address: 'support@example.com' },
    ]);
    const audit = await h.call<Obj>('GET', '/api/v1/audit', undefined, token);
    assert.equal(audit.body.entries[0].action, 'message.released');
    assert.equal(audit.body.entries[0].target.id, id);
    // Acted on once: a second release finds nothing held.
    const again = await h.call<Obj>(
      'POST',
      `/api/v1/tenants/${tenantId}/servers/${serverId}/messages/${id}/release`,
      {},
    );
    assert.equal(again.body.error.code, 'MESSAGE_NOT_HELD');
  });

  it('routes an unrouted message to a chosen destination and deletes another, each traced and audited', async () => {
    const { tenantId, serverId, token, tokenId } = await setUp();
    const elsewhere = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/destinations`, {
      name: 'Sales',
      address: 'sales@example.com',
      serverId,
    });
    await h.inbound.start();
    imap.append('support@example.com', 'INBOX', rawMail({ to: 'nobody@example.com', subject: 'lost one' }));
    imap.append('support@example.com', 'INBOX', rawMail({ to: 'nobody@example.com', subject: 'spam one' }));
    const held = await eventually(async () => {
      const res = await h.call<Obj>(
        'GET',
        `/api/v1/tenants/${tenantId}/servers/${serverId}/messages?status=unrouted`,
        undefined,
        token,
      );
      return res.body.messages?.length === 2 ? (res.body.messages as Obj[]) : undefined;
    }, 20_000);
    const lost = held.find((m) => m.subject === 'lost one') as Obj;
    const spam = held.find((m) => m.subject === 'spam one') as Obj;
    const notYet = await h.call<Obj>(
      'POST',
      `/api/v1/tenants/${tenantId}/servers/${serverId}/messages/${lost.id}/release`,
      {},
      token,
    );
    assert.equal(notYet.body.error.code, 'MESSAGE_NOT_RELEASABLE');
    const routed = await h.call<Obj>(
      'POST',
      `/api/v1/tenants/${tenantId}/servers/${serverId}/messages/${lost.id}/route`,
      { destinationId: elsewhere.body.id },
      token,
    );
    assert.equal(routed.status, 200, routed.raw);
    const deleted = await h.call<Obj>(
      'DELETE',
      `/api/v1/tenants/${tenantId}/servers/${serverId}/messages/${spam.id}`,
      undefined,
      token,
    );
    assert.equal(deleted.status, 200, deleted.raw);
    assert.equal((await h.store.query('SELECT 1 FROM inbound_messages WHERE id = $1', [spam.id])).length, 0);

    const timeline = await h.call<Obj>('GET', `/api/v1/tenants/${tenantId}/trace/inbound/${lost.id}`, undefined, token);
    const types = timeline.body.events.map((e: Obj) => e.type);
    assert.deepEqual(types, ['fetched', 'classified', 'unrouted', 'routed']);
    assert.match(timeline.body.events[2].detail.reason, /no monitored destination/);
    assert.deepEqual(timeline.body.events[3].detail.destinations, [{ id: elsewhere.body.id, operator: true }]);
    assert.equal(timeline.body.events[3].detail.tokenId, tokenId);
    const audit = await h.call<Obj>('GET', '/api/v1/audit', undefined, token);
    assert.deepEqual(
      audit.body.entries.slice(0, 2).map((e: Obj) => [e.action, e.target.id, e.actor.tokenId]),
      [
        ['message.deleted', spam.id, tokenId],
        ['message.routed', lost.id, tokenId],
      ],
    );
    // The audit log names the message, never its content (it outlives mail and erasure).
    assert.deepEqual(audit.body.entries[0].detail, { serverId, previously: 'unrouted' });
    // A deleted message's timeline is read from its events.
    const gone = await h.call<Obj>('GET', `/api/v1/tenants/${tenantId}/trace/inbound/${spam.id}`, undefined, token);
    assert.equal(gone.status, 200, gone.raw);
    assert.equal(gone.body.status, 'deleted');
    assert.equal(gone.body.subject, null);
    const goneTypes = gone.body.events.map((e: Obj) => e.type);
    assert.equal(goneTypes[goneTypes.length - 1], 'deleted');
    assert.equal(gone.body.events[goneTypes.length - 1].detail.tokenId, tokenId);
    const never = await h.call<Obj>(
      'GET',
      `/api/v1/tenants/${tenantId}/trace/inbound/${randomUUID()}`,
      undefined,
      token,
    );
    assert.equal(never.status, 404);
    // Another tenant's token cannot act on it.
    const other = await h.call<Obj>('POST', '/api/v1/tenants', { name: 'Other' });
    const otherToken = (await h.call<Obj>('POST', `/api/v1/tenants/${other.body.id}/tokens`, { name: 'x' })).body.token;
    const refused = await h.call<Obj>(
      'DELETE',
      `/api/v1/tenants/${tenantId}/servers/${serverId}/messages/${lost.id}`,
      undefined,
      otherToken,
    );
    assert.equal(refused.status, 404);
  });
});
