import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { simpleParser } from 'mailparser';
import { CredentialService } from '../../src/auth/credentials.js';
import { OutboundService } from '../../src/outbound/outbound-service.js';
import type { SpoolItem } from '../../src/outbound/spool.js';
import { MailroomError } from '../../src/shared/errors.js';
import { queuedRow } from '../../src/store/rows.js';
import { startSmtpHarness, type SmtpHarness } from '../../src/harness/smtp-harness.js';
import { forEachBackend, openApiHarness, type ApiHarness } from '../support/api-harness.js';
import { quietLogger } from '../support/database.js';
import { eventually } from '../support/mail.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON answers in tests

forEachBackend('outbound', (kind) => {
  let h: ApiHarness;
  let smtp: SmtpHarness;
  let tenantId: string;

  beforeEach(async () => {
    h = await openApiHarness(kind);
    smtp = await startSmtpHarness({ users: [{ user: 'relay', password: 'relay-pass' }] });
    tenantId = (await h.call<Obj>('POST', '/api/v1/tenants', { name: 'Outbound' })).body.id;
  });
  afterEach(async () => {
    await h.close();
    await smtp.close();
  });

  async function account(n: number, smtpOverrides: Obj = {}): Promise<{ serverId: string; destinationId: string }> {
    const server = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/servers`, {
      name: `Account ${n}`,
      imap: { host: '127.0.0.1', port: 1, user: `box${n}@example.com`, auth: { method: 'password', password: 'x' } },
      smtp: {
        host: '127.0.0.1',
        port: smtp.port,
        auth: { mode: 'custom', user: 'relay', password: 'relay-pass' },
        ...smtpOverrides,
      },
      enabled: false,
    });
    assert.equal(server.status, 201, server.raw);
    const destination = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/destinations`, {
      name: `Support ${n}`,
      address: `support${n}@example.com`,
      fromText: 'ACME Support',
      serverId: server.body.id,
    });
    return { serverId: server.body.id, destinationId: destination.body.id };
  }

  function send(destinationId: string, body: Obj) {
    return h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/destinations/${destinationId}/outbound`, body);
  }

  async function statusOf(destinationId: string, id: string): Promise<Obj> {
    return (await h.call<Obj>('GET', `/api/v1/tenants/${tenantId}/destinations/${destinationId}/outbound/${id}`)).body;
  }

  it('accepts a message into the spool (202) and delivers it from the destination', async () => {
    const { destinationId } = await account(1);
    await h.outbound.start();
    const accepted = await send(destinationId, { to: ['customer@example.net'], subject: 'Hello', text: 'Body' });
    assert.equal(accepted.status, 202, accepted.raw);
    const [received] = await smtp.waitFor(1);
    assert.deepEqual(received?.envelope.to, ['customer@example.net']);
    const parsed = await simpleParser(received?.raw as Buffer);
    assert.equal(parsed.from?.text, '"ACME Support" <support1@example.com>');
    // The sending address's domain, as mail clients write it (issue 30): not `@mailroom.invalid`.
    assert.equal(parsed.messageId, `<mailroom.${accepted.body.id}@example.com>`);
    assert.equal(parsed.headers.get('x-mailroom-loop'), 'test-instance');
    const done = await eventually(async () => {
      const s = await statusOf(destinationId, accepted.body.id);
      return s.status === 'sent' ? s : undefined;
    });
    assert.match(done.lastReply, /^250/);
    assert.equal(done.attempts, 1);
  });

  it('sends from the bare address when the destination has no From text (its name is not shown)', async () => {
    const { destinationId } = await account(1);
    const patched = await h.call<Obj>('PATCH', `/api/v1/tenants/${tenantId}/destinations/${destinationId}`, {
      fromText: '',
    });
    assert.equal(patched.status, 200, patched.raw);
    await h.outbound.start();
    assert.equal((await send(destinationId, { to: ['customer@example.net'], text: 'Body' })).status, 202);
    const [received] = await smtp.waitFor(1);
    const parsed = await simpleParser(received?.raw as Buffer);
    assert.equal(parsed.from?.text, 'support1@example.com');
    assert.ok(!received?.raw.toString().includes('Support 1'), 'the destination’s name stays internal');
  });

  it('keeps the connection of a message on its way when its server is changed, then uses the new settings', async () => {
    const { serverId, destinationId } = await account(1);
    await h.outbound.start();
    // Every reply 500 ms late: once the relay has the message, its 250 is half a second away.
    smtp.faults.slow({ delayMs: 500 });
    const accepted = await send(destinationId, { to: ['customer@example.net'], subject: 'in transit', text: 'x' });
    assert.equal(accepted.status, 202, accepted.raw);
    await smtp.waitFor(1, 10_000);
    const changed = await h.call<Obj>('PATCH', `/api/v1/tenants/${tenantId}/servers/${serverId}`, {
      smtp: { rateLimitPerHour: 500 },
    });
    assert.equal(changed.status, 200, changed.raw);
    await h.outbound.reconcile(); // as the periodic look at the servers does, before the 250 arrives
    const sent = await eventually(async () => {
      const row = await statusOf(destinationId, accepted.body.id);
      return row.status === 'sent' ? row : undefined;
    }, 10_000);
    assert.equal(sent.attempts, 1, 'delivered by the attempt under way, not cut off and sent again');
    smtp.faults.slow(undefined);
    const next = await send(destinationId, { to: ['customer@example.net'], subject: 'after', text: 'x' });
    await smtp.waitFor(2);
    assert.notEqual(smtp.messages[0]?.sessionId, smtp.messages[1]?.sessionId, 'the next one on a new connection');
    await eventually(async () => ((await statusOf(destinationId, next.body.id)).status === 'sent' ? true : undefined));
    assert.equal(smtp.messages.length, 2, 'each once');
  });

  it('refuses to delete a server while mail waits for it, and with discardQueued gives that mail up visibly', async () => {
    const { serverId, destinationId } = await account(1);
    await h.outbound.start();
    await smtp.stop(); // the relay is down: accepted mail waits in the spool
    const ids: string[] = [];
    for (const subject of ['first', 'second']) {
      const accepted = await send(destinationId, { to: ['customer@example.net'], subject, text: 'x' });
      assert.equal(accepted.status, 202, accepted.raw);
      ids.push(accepted.body.id);
    }
    const detached = await h.call<Obj>('DELETE', `/api/v1/tenants/${tenantId}/destinations/${destinationId}`);
    assert.equal(detached.status, 204, detached.raw);

    const refused = await h.call<Obj>('DELETE', `/api/v1/tenants/${tenantId}/servers/${serverId}`);
    assert.equal(refused.status, 409, refused.raw);
    assert.equal(refused.body.error.code, 'SERVER_HAS_QUEUED_MAIL');
    assert.equal(refused.body.error.field, 'discardQueued');
    assert.match(refused.body.error.message, /still has 2 outgoing messages waiting/);

    const deleted = await h.call<Obj>('DELETE', `/api/v1/tenants/${tenantId}/servers/${serverId}?discardQueued=true`);
    assert.equal(deleted.status, 204, deleted.raw);
    await h.outbound.reconcile(); // the instance holding the files retires the deleted server's queue
    for (const id of ids) {
      const row = await h.store.outbound.byId(id);
      assert.equal(row?.status, 'failed');
      assert.match(row?.lastReply ?? '', /e-mail server was deleted/);
    }
    const dead = await readdir(join(h.spoolDir, 'dead', serverId));
    assert.equal(dead.filter((f) => f.endsWith('.msg')).length, 2, 'both files kept as dead letters');
    await assert.rejects(readdir(join(h.spoolDir, 'queue', serverId)), { code: 'ENOENT' }, 'its queue folder is gone');

    await smtp.start();
    await h.outbound.reconcile();
    // No queue is left to send from (a count after a pause would prove less).
    assert.equal(h.outbound.status(serverId).queue, null, 'the deleted server has no queue');
    assert.equal(smtp.messages.length, 0, 'nothing given up is sent');
  });

  it('replies to an inbound message with a response file: threading, Re:, customer, identifiers', async () => {
    const { serverId, destinationId } = await account(1);
    const inboundId = randomUUID();
    const conversationId = randomUUID();
    await h.store.messages.insertBatch([
      {
        row: {
          id: inboundId,
          tenantId,
          serverId,
          mailbox: 'INBOX',
          uidValidity: 1,
          uid: 1,
          status: 'routed',
          quarantineReason: null,
          messageIdHeader: 'question-1@example.net',
          dedupeKey: 'mid:question-1@example.net',
          conversationId,
          subject: 'Where is my order?',
          fromAddress: 'jane@example.net',
          fromName: 'Jane Doe',
          recipients: { to: [], cc: [], deliveredTo: [], xOriginalTo: [] },
          sentAt: null,
          receivedAt: new Date('2026-03-04T10:00:00Z'),
          size: 100,
          classification: { autoReply: false, bounce: false, loop: false, reasons: [] },
          inReplyTo: null,
          references: ['earlier@example.net'],
          bodyText: 'Hello?',
          bodyHtml: null,
          attachments: [],
        },
        raw: null,
      },
    ]);
    await h.outbound.start();
    const res = await send(destinationId, {
      inReplyTo: inboundId,
      response: { file: 'support.xml', name: 'Acknowledgement' },
      agent: { name: 'Max Agent', firstName: 'Max' },
    });
    assert.equal(res.status, 202, res.raw);
    assert.equal(res.body.conversationId, conversationId);
    const [received] = await smtp.waitFor(1);
    assert.deepEqual(received?.envelope.to, ['jane@example.net']);
    const parsed = await simpleParser(received?.raw as Buffer);
    assert.equal(parsed.subject, 'Re: Where is my order?');
    assert.equal(parsed.inReplyTo, '<question-1@example.net>');
    assert.deepEqual(parsed.references, ['<earlier@example.net>', '<question-1@example.net>']);
    assert.match(parsed.text ?? '', /Dear Jane Doe,/);
    assert.match(parsed.text ?? '', /"Where is my order\?"/);
    assert.match(parsed.text ?? '', new RegExp(`case number is ${inboundId}`));
    assert.match(parsed.text ?? '', /Max Agent, Support 1/);
  });

  it('marks a status row whose message never reached the spool as failed at start', async () => {
    const { serverId, destinationId } = await account(1);
    const orphan = randomUUID();
    await h.store.outbound.insert(
      queuedRow({
        id: orphan,
        tenantId,
        destinationId,
        serverId,
        messageIdHeader: `${orphan}@mailroom.invalid`,
        conversationId: null,
        subject: 'lost before the spool',
        recipients: ['c@example.net'],
        instanceId: 'test-instance',
      }),
    );
    await h.outbound.start();
    const kept = await send(destinationId, { to: ['c@example.net'], text: 'kept' });
    assert.equal(kept.status, 202);
    const swept = await statusOf(destinationId, orphan);
    assert.equal(swept.status, 'failed');
    assert.match(swept.lastReply, /never|before the message reached the spool/);
    await smtp.waitFor(1);
    assert.equal(smtp.messages.length, 1, 'only the spooled message is sent');
  });

  const leftDeliveries: Array<{
    how: string;
    leave: (spool: OutboundService['spool'], item: SpoolItem) => Promise<void>;
  }> = [
    {
      how: 'marked in the sent log',
      leave: async (spool, item) => {
        spool.markSent(item);
      },
    },
    {
      how: 'moved into sent/ by an earlier version',
      leave: async (spool, item) => {
        await mkdir(join(spool.dir, 'sent', item.accountId), { recursive: true });
        await rename(item.file, join(spool.dir, 'sent', item.accountId, item.name));
      },
    },
  ];
  for (const { how, leave } of leftDeliveries)
    it(`records at start a message delivered just before the engine stopped (${how}), and never sends it again`, async () => {
      const { serverId, destinationId } = await account(1);
      await smtp.stop();
      await h.outbound.start();
      const accepted = await send(destinationId, {
        to: ['c@example.net'],
        subject: 'delivered, then a crash',
        text: 'x',
      });
      assert.equal(accepted.status, 202, accepted.raw);
      await h.outbound.stop();
      // As after a 250 and a kill before the database had it.
      const [item] = await h.outbound.spool.list(serverId);
      assert.ok(item);
      await leave(h.outbound.spool, item);
      assert.deepEqual(await h.outbound.spool.list(serverId), [], 'a marked delivery is no longer queued');
      await smtp.start();
      const again = new OutboundService({
        store: h.store,
        credentials: new CredentialService(h.sealer),
        logger: quietLogger,
        spoolDir: h.spoolDir,
        instanceId: 'test-instance',
        options: { fsync: false, heartbeatIntervalMs: 0 },
      });
      try {
        await again.start();
        const recorded = await eventually(async () => {
          const row = await again.get(tenantId, destinationId, accepted.body.id);
          return row.status === 'sent' ? row : undefined;
        });
        assert.match(String(recorded.lastReply), /recorded later from the spool’s sent log/);
        const logged = await h.store.query<{ n: string }>(
          'SELECT count(*) AS n FROM smtp_send_log WHERE outbound_id = $1',
          [accepted.body.id],
        );
        assert.equal(Number(logged[0]?.n), 1, 'in the send log, so the hourly limit counts it');
        assert.deepEqual(await again.spool.listSent(serverId), []);
        // Nothing is queued to send again (a count after a pause would prove less).
        assert.deepEqual(await again.spool.list(serverId), []);
        assert.equal(again.status(serverId).queue?.depth ?? 0, 0);
        assert.equal(smtp.messages.length, 0, 'not sent a second time');
      } finally {
        await again.stop();
      }
    });

  it('refuses a subject holding U+0000 or a lone surrogate with 400 naming the field, and sends nothing', async () => {
    const { serverId, destinationId } = await account(1);
    await h.outbound.start();
    for (const subject of ['a\u0000b', 'b \ud800c']) {
      const res = await send(destinationId, { to: ['customer@example.net'], subject, text: 'x' });
      assert.equal(res.status, 400, res.raw);
      assert.equal(res.body.error.field, 'subject');
    }
    const [rows] = await h.store.query<{ n: string }>('SELECT count(*) AS n FROM outbound_messages');
    assert.equal(Number(rows?.n), 0, 'nothing accepted');
    assert.deepEqual(await h.outbound.spool.list(serverId), [], 'nothing spooled to send');
    assert.equal(smtp.messages.length, 0, 'nothing sent');
  });

  it('never lets CR/LF in a subject or name create headers or recipients', async () => {
    const { destinationId } = await account(1);
    await h.outbound.start();
    const res = await send(destinationId, {
      to: ['customer@example.net'],
      subject: 'Hi\r\nBcc: x@evil.test',
      text: 'x',
      attachments: [{ filename: 'a\r\nBcc: y@evil.test.txt', contentType: 'text/plain', contentBase64: 'aGk=' }],
    });
    assert.equal(res.status, 202, res.raw);
    const [received] = await smtp.waitFor(1);
    assert.deepEqual(received?.envelope.to, ['customer@example.net']);
    const text = (received?.raw as Buffer).toString('utf8');
    assert.equal(text.match(/^Subject:/gim)?.length, 1);
    assert.doesNotMatch(text, /^Bcc:/im);
  });

  it('refuses a destination not available for outgoing mail, and invalid input by field', async () => {
    const { destinationId } = await account(1);
    await h.call('PATCH', `/api/v1/tenants/${tenantId}/destinations/${destinationId}`, { outgoing: false });
    const refused = await send(destinationId, { to: ['a@example.net'], text: 'x' });
    assert.equal(refused.status, 409);
    assert.equal(refused.body.error.code, 'NOT_AVAILABLE_FOR_OUTGOING');
    await h.call('PATCH', `/api/v1/tenants/${tenantId}/destinations/${destinationId}`, { outgoing: true });
    assert.equal((await send(destinationId, { to: ['not an address'], text: 'x' })).body.error.field, 'to.0');
    assert.equal((await send(destinationId, { to: ['a@example.net'] })).body.error.field, 'text');
  });

  it('composes from a remembered destination only while its row is unchanged', async () => {
    const { destinationId } = await account(1);
    await h.outbound.start();
    const fromOf = async (n: number): Promise<string | undefined> =>
      (await simpleParser((await smtp.waitFor(n))[n - 1]?.raw as Buffer)).from?.text;
    assert.equal((await send(destinationId, { to: ['a@example.net'], text: '1' })).status, 202);
    assert.equal(await fromOf(1), '"ACME Support" <support1@example.com>');
    // Changed behind the engine's back (another instance, or SQL): the remembered copy is stale.
    await h.store.query(`UPDATE destinations SET from_text = 'ACME Help' WHERE id = $1`, [destinationId]);
    assert.equal((await send(destinationId, { to: ['a@example.net'], text: '2' })).status, 202);
    assert.equal(await fromOf(2), '"ACME Help" <support1@example.com>');
    await h.store.query(`UPDATE destinations SET outgoing = false WHERE id = $1`, [destinationId]);
    const refused = await send(destinationId, { to: ['a@example.net'], text: '3' });
    assert.equal(refused.status, 409, refused.raw);
    assert.equal(refused.body.error.code, 'NOT_AVAILABLE_FOR_OUTGOING');
    await h.store.query(`UPDATE destinations SET outgoing = true WHERE id = $1`, [destinationId]);
    assert.equal((await send(destinationId, { to: ['a@example.net'], text: '4' })).status, 202);
    await h.store.query(`DELETE FROM destinations WHERE id = $1`, [destinationId]);
    const gone = await send(destinationId, { to: ['a@example.net'], text: '5' });
    assert.equal(gone.status, 404, gone.raw);
    assert.equal(gone.body.error.code, 'DESTINATION_NOT_FOUND');
    await smtp.waitFor(3);
    assert.equal(smtp.messages.length, 3);
  });

  it('keeps 1,000 messages of two accounts through an outage and delivers each once, in order', async function () {
    this.timeout(180_000);
    const a = await account(1);
    const b = await account(2);
    await smtp.stop();
    await h.outbound.start();
    const ids: Record<string, string[]> = { [a.destinationId]: [], [b.destinationId]: [] };
    for (let i = 0; i < 500; i++) {
      for (const d of [a.destinationId, b.destinationId]) {
        const res = await send(d, { to: ['customer@example.net'], subject: `${d} #${i}`, text: `n=${i}` });
        assert.equal(res.status, 202);
        ids[d]?.push(res.body.id);
      }
    }
    await smtp.start();
    const received = await smtp.waitFor(1000, 60_000);
    assert.equal(received.length, 1000);
    for (const d of [a.destinationId, b.destinationId]) {
      const order = received
        .map((m) => (m.raw as Buffer).toString('utf8').match(/^Subject: (.*)$/m)?.[1] ?? '')
        .filter((s) => s.startsWith(d))
        .map((s) => Number(s.split('#')[1]));
      assert.deepEqual(
        order,
        Array.from({ length: 500 }, (_, i) => i),
        'in order, each once',
      );
    }
    for (const serverId of [a.serverId, b.serverId]) {
      await eventually(async () => ((await h.outbound.spool.list(serverId)).length === 0 ? true : undefined));
    }
  });

  describe('failures end in the right state', () => {
    const cases: Array<[string, (s: SmtpHarness) => void, string, RegExp]> = [
      ['451 at MAIL', (s) => s.faults.replyAt('mailFrom', 451, '4.3.0 try later'), 'deferred', /451/],
      ['452 at RCPT', (s) => s.faults.rejectRecipient('*', 452, '4.5.3 too many'), 'deferred', /452/],
      ['550 at RCPT', (s) => s.faults.rejectRecipient('*', 550, '5.1.1 no such user'), 'failed', /550/],
      ['554 after DATA', (s) => s.faults.replyAt('data', 554, '5.7.1 rejected'), 'failed', /554/],
    ];
    for (const [what, fault, status, reply] of cases) {
      it(`${what} → ${status}`, async () => {
        const { serverId, destinationId } = await account(1);
        fault(smtp);
        await h.outbound.start();
        const res = await send(destinationId, { to: ['customer@example.net'], text: 'x' });
        const final = await eventually(async () => {
          const s = await statusOf(destinationId, res.body.id);
          return s.status === status ? s : undefined;
        });
        assert.match(final.lastReply, reply);
        if (status === 'failed') {
          const dead = await h.call<Obj>('GET', `/api/v1/tenants/${tenantId}/servers/${serverId}/dead-letters`);
          assert.equal(dead.body.deadLetters.length, 1);
          assert.match(dead.body.deadLetters[0].reply, reply);
        } else {
          assert.ok(final.nextAttemptAt, 'a retry is scheduled');
        }
      });
    }

    it('a refused login holds the queue without dead-lettering, and a fixed password releases it', async () => {
      const { serverId, destinationId } = await account(1, {
        auth: { mode: 'custom', user: 'relay', password: 'wrong' },
      });
      await h.outbound.start();
      const res = await send(destinationId, { to: ['customer@example.net'], text: 'x' });
      const status = await eventually(async () => {
        const s = await h.call<Obj>('GET', `/api/v1/tenants/${tenantId}/servers/${serverId}/status`);
        return s.body.outbound.queue?.state === 'held' ? s.body : undefined;
      });
      assert.match(status.outbound.queue.lastReply, /535|auth/i);
      assert.equal((await statusOf(destinationId, res.body.id)).status, 'deferred');
      await h.call('PATCH', `/api/v1/tenants/${tenantId}/servers/${serverId}`, {
        smtp: { auth: { mode: 'custom', user: 'relay', password: 'relay-pass' } },
      });
      await h.outbound.reconcile();
      await smtp.waitFor(1, 10_000);
      await eventually(async () => ((await statusOf(destinationId, res.body.id)).status === 'sent' ? true : undefined));
    });

    it('a refused connection pauses the queue and the probe resumes it', async () => {
      const { serverId, destinationId } = await account(1);
      await smtp.stop();
      await h.outbound.start();
      const res = await send(destinationId, { to: ['customer@example.net'], text: 'x' });
      await eventually(async () => {
        const s = await h.call<Obj>('GET', `/api/v1/tenants/${tenantId}/servers/${serverId}/status`);
        return s.body.outbound.queue?.state === 'paused' ? true : undefined;
      });
      await smtp.start();
      await smtp.waitFor(1, 10_000);
      await eventually(async () => ((await statusOf(destinationId, res.body.id)).status === 'sent' ? true : undefined));
    });

    it('a connection dropped mid-DATA is retried and delivered', async () => {
      const { destinationId } = await account(1);
      smtp.faults.dropAt('midData', { times: 1 });
      await h.outbound.start();
      const res = await send(destinationId, { to: ['customer@example.net'], text: 'x'.repeat(50_000) });
      await smtp.waitFor(1, 10_000);
      await eventually(async () => ((await statusOf(destinationId, res.body.id)).status === 'sent' ? true : undefined));
    });

    async function queueState(serverId: string, state: string): Promise<Obj> {
      return eventually(async () => {
        const s = await h.call<Obj>('GET', `/api/v1/tenants/${tenantId}/servers/${serverId}/status`);
        return s.body.outbound.queue?.state === state ? s.body.outbound.queue : undefined;
      });
    }

    it('a 421 greeting pauses the queue, and the message is delivered after recovery', async () => {
      const { serverId, destinationId } = await account(1);
      smtp.faults.replyAt('connect', 421, '4.3.2 Service busy, come back later');
      await h.outbound.start();
      const res = await send(destinationId, { to: ['customer@example.net'], text: 'x' });
      const queue = await queueState(serverId, 'paused');
      assert.match(queue.lastReply, /421/);
      const deferred = await statusOf(destinationId, res.body.id);
      assert.equal(deferred.status, 'deferred');
      assert.match(deferred.lastReply, /421/);
      assert.equal(smtp.messages.length, 0);
      smtp.faults.clear();
      await smtp.waitFor(1, 10_000);
      await eventually(async () => ((await statusOf(destinationId, res.body.id)).status === 'sent' ? true : undefined));
      await queueState(serverId, 'ok');
    });

    it('a connection dropped after the final dot is retried: a recorded duplicate, then sent', async () => {
      const { destinationId } = await account(1);
      smtp.faults.dropAt('afterData', { times: 1 });
      await h.outbound.start();
      const res = await send(destinationId, { to: ['customer@example.net'], text: 'x' });
      const [first, second] = await smtp.waitFor(2, 10_000);
      assert.equal(first?.acknowledged, false, 'the server kept the first copy but never answered 250');
      assert.equal(second?.acknowledged, true);
      const messageIdOf = (m: typeof first) => (m?.raw as Buffer).toString('utf8').match(/^Message-ID: (.*)$/im)?.[1];
      assert.equal(messageIdOf(first), `<mailroom.${res.body.id}@example.com>`, 'the same message both times');
      assert.equal(messageIdOf(second), messageIdOf(first));
      const done = await eventually(async () => {
        const s = await statusOf(destinationId, res.body.id);
        return s.status === 'sent' ? s : undefined;
      });
      assert.equal(done.attempts, 2, 'the retry is counted');
    });

    it('a server answering one byte per second times out as unreachable, and the message is kept', async () => {
      await h.close();
      h = await openApiHarness(kind, undefined, {
        smtpTimeouts: { connectionMs: 1_000, greetingMs: 1_000, socketMs: 1_000 },
      });
      tenantId = (await h.call<Obj>('POST', '/api/v1/tenants', { name: 'Outbound' })).body.id;
      const { serverId, destinationId } = await account(1);
      smtp.faults.slow({ trickle: { chunkBytes: 1, intervalMs: 1_000 } });
      await h.outbound.start();
      const res = await send(destinationId, { to: ['customer@example.net'], text: 'x' });
      const queue = await queueState(serverId, 'paused');
      assert.match(queue.lastReply, /greeting|timed? ?out|timeout/i);
      const deferred = await statusOf(destinationId, res.body.id);
      assert.equal(deferred.status, 'deferred');
      assert.equal((await h.outbound.spool.list(serverId)).length, 1, 'still in the spool');
      smtp.faults.slow(undefined);
      await smtp.waitFor(1, 10_000);
      await eventually(async () => ((await statusOf(destinationId, res.body.id)).status === 'sent' ? true : undefined));
    });
  });

  describe('spool integrity', () => {
    it('a spool file with a flipped byte goes to corrupt/, is never sent, and says so', async () => {
      const { serverId, destinationId } = await account(1);
      await smtp.stop();
      await h.outbound.start();
      const bad = await send(destinationId, { to: ['customer@example.net'], subject: 'damaged', text: 'x' });
      const good = await send(destinationId, { to: ['customer@example.net'], subject: 'intact', text: 'y' });
      const [badItem] = (await h.outbound.spool.list(serverId)).filter((i) => i.id === bad.body.id);
      assert.ok(badItem, 'the message is spooled');
      const bytes = await readFile(badItem.file);
      // In the message body: before the end of what the header line says the message is (a
      // recycled file may go on with zeros to the length it keeps).
      const headerLine = bytes.indexOf(0x0a);
      const at = headerLine + (JSON.parse(bytes.subarray(0, headerLine).toString('utf8')) as { size: number }).size - 3;
      bytes[at] = (bytes[at] as number) ^ 0x01;
      await writeFile(badItem.file, bytes);
      await smtp.start();

      const [received] = await smtp.waitFor(1, 10_000);
      assert.match((received?.raw as Buffer).toString('utf8'), /^Subject: intact$/m);
      const failed = await eventually(async () => {
        const s = await statusOf(destinationId, bad.body.id);
        return s.status === 'failed' ? s : undefined;
      });
      assert.match(failed.lastReply, /damaged.*corrupt/);
      await eventually(async () =>
        (await statusOf(destinationId, good.body.id)).status === 'sent' ? true : undefined,
      );
      assert.deepEqual(
        (await readdir(join(h.spoolDir, 'corrupt'))).filter((f) => f.includes(bad.body.id)).length,
        1,
        'set aside in corrupt/',
      );
      assert.equal(smtp.messages.length, 1, 'the damaged message was never sent');
      assert.ok(
        h.logLines.some((l) => /spool file damaged/.test(l) && l.includes(bad.body.id)),
        'an error line names the message',
      );
    });

    it('answers 507 SPOOL_FULL when the disk is full, and records nothing as accepted', async () => {
      const { serverId, destinationId } = await account(1);
      await h.outbound.start();
      const spool = h.outbound.spool as unknown as { writeTemp: (...args: unknown[]) => Promise<void> };
      spool.writeTemp = async () => {
        throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
      };
      const refused = await send(destinationId, { to: ['customer@example.net'], text: 'x' });
      assert.equal(refused.status, 507, refused.raw);
      assert.equal(refused.body.error.code, 'SPOOL_FULL');
      const [count] = await h.store.query<{ n: string }>('SELECT count(*) AS n FROM outbound_messages');
      assert.equal(Number(count?.n), 0, 'no status row');
      assert.deepEqual(await h.outbound.spool.list(serverId), []);
      assert.deepEqual(await readdir(join(h.spoolDir, 'tmp')), [], 'no temp file left behind');

      delete (spool as Partial<typeof spool>).writeTemp; // the disk has room again
      const accepted = await send(destinationId, { to: ['customer@example.net'], text: 'x' });
      assert.equal(accepted.status, 202, accepted.raw);
      await smtp.waitFor(1, 10_000);
      assert.equal(smtp.messages.length, 1);
    });
  });

  describe('OAuth 2.0 on SMTP', () => {
    let oauthSmtp: SmtpHarness;
    let extra: OutboundService | undefined;
    beforeEach(async () => {
      oauthSmtp = await startSmtpHarness({ accessTokens: { 'agent@example.com': 'fresh-token' } });
    });
    afterEach(async () => {
      await extra?.stop();
      extra = undefined;
      await oauthSmtp.close();
    });

    /** An outbound side whose credentials are the given token source (as an OAuth account's would be). */
    async function oauthOutbound(
      smtpLogin: (options: { forceRefresh?: boolean }) => Promise<{ user: string; accessToken: string }>,
    ): Promise<{ serverId: string; destinationId: string; outbound: OutboundService }> {
      const ids = await account(1, { port: oauthSmtp.port });
      const credentials = {
        smtpLogin: (_row: unknown, options: { forceRefresh?: boolean } = {}) => smtpLogin(options),
      } as unknown as CredentialService;
      const spoolDir = join(h.spoolDir, 'oauth');
      extra = new OutboundService({
        store: h.store,
        credentials,
        logger: quietLogger,
        spoolDir,
        instanceId: 'test-instance',
        options: { fsync: false, probeIntervalMs: 300, authRetryMs: 300, heartbeatIntervalMs: 0, maxLifetimeMs: 1 },
      });
      await extra.start();
      return { ...ids, outbound: extra };
    }

    it('a refused access token is refreshed once and the message is sent', async () => {
      const calls: boolean[] = [];
      const { destinationId, outbound } = await oauthOutbound(async (options) => {
        calls.push(options.forceRefresh === true);
        return { user: 'agent@example.com', accessToken: options.forceRefresh ? 'fresh-token' : 'stale-token' };
      });
      const view = await outbound.accept(tenantId, destinationId, { to: ['customer@example.net'], text: 'x' });
      const [received] = await oauthSmtp.waitFor(1, 10_000);
      assert.equal(received?.user, 'agent@example.com');
      assert.deepEqual(calls, [false, true], 'one refresh');
      await eventually(async () =>
        (await outbound.get(tenantId, destinationId, view.id)).status === 'sent' ? true : undefined,
      );
      assert.equal(outbound.status(view.serverId).queue?.state, 'ok');
    });

    it('REAUTH_REQUIRED holds the queue: the message stays queued, never dead-lettered', async () => {
      const { serverId, destinationId, outbound } = await oauthOutbound(async () => {
        throw new MailroomError('CREDENTIALS_UNAVAILABLE', 'SMTP credentials are not usable: sign in again', {
          details: { reason: 'REAUTH_REQUIRED' },
        });
      });
      const view = await outbound.accept(tenantId, destinationId, { to: ['customer@example.net'], text: 'x' });
      await eventually(async () => (outbound.status(serverId).queue?.state === 'held' ? true : undefined));
      // Several retries later (maxLifetimeMs is 1 ms), still held, still in the queue.
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      const row = await outbound.get(tenantId, destinationId, view.id);
      assert.equal(row.status, 'deferred');
      assert.match(row.lastReply ?? '', /sign in again/);
      assert.equal(outbound.status(serverId).queue?.state, 'held');
      assert.deepEqual(await outbound.deadLetters(tenantId, serverId), []);
      assert.equal((await outbound.spool.list(serverId)).length, 1);
      assert.equal(oauthSmtp.messages.length, 0);
    });
  });
});
