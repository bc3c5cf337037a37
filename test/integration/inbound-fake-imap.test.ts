import assert from 'node:assert/strict';
import { startFakeImap, type FakeImapServer } from '../../src/harness/fake-imap/index.js';
import { forEachBackend, openApiHarness, type ApiHarness } from '../support/api-harness.js';
import { eventually, rawMail } from '../support/mail.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON answers in tests

forEachBackend('inbound with the fake IMAP server', (kind) => {
  let h: ApiHarness;
  let imap: FakeImapServer;
  let tenantId: string;

  beforeEach(async () => {
    h = await openApiHarness(kind);
    imap = await startFakeImap({
      users: [
        { user: 'support@example.com', password: 'imap-pass' },
        { user: 'other@example.com', password: 'imap-pass' },
      ],
    });
    tenantId = (await h.call<Obj>('POST', '/api/v1/tenants', { name: 'Inbound' })).body.id;
  });
  afterEach(async function () {
    if (this.currentTest?.state === 'failed') {
      process.stdout.write(`--- engine log of the failed test:\n${h.logLines.slice(-40).join('\n')}\n`);
    }
    await h.close();
    await imap.close();
  });

  async function addServer(name: string, user: string, overrides: Obj = {}): Promise<string> {
    const res = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/servers`, {
      name,
      imap: {
        host: '127.0.0.1',
        port: imap.port,
        secure: false,
        user,
        auth: { method: 'password', password: 'imap-pass' },
        ...overrides,
      },
      smtp: { host: '127.0.0.1', port: 2525, auth: { mode: 'none' } },
    });
    assert.equal(res.status, 201, res.raw);
    return res.body.id;
  }

  async function addDestination(serverId: string, name: string, address: string): Promise<string> {
    const res = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/destinations`, { name, address, serverId });
    assert.equal(res.status, 201, res.raw);
    return res.body.id;
  }

  async function feed(destinationId: string, after = 0, wait = 0): Promise<{ messages: Obj[]; next: number }> {
    const res = await h.call<Obj>(
      'GET',
      `/api/v1/tenants/${tenantId}/destinations/${destinationId}/messages?after=${after}&wait=${wait}`,
    );
    assert.equal(res.status, 200, res.raw);
    return res.body as { messages: Obj[]; next: number };
  }

  async function feedUntil(destinationId: string, count: number, timeoutMs = 10_000): Promise<Obj[]> {
    return eventually(async () => {
      const got = await feed(destinationId);
      return got.messages.length >= count ? got.messages : undefined;
    }, timeoutMs);
  }

  it('routes each message to its destinations exactly once, including mail already read elsewhere', async () => {
    const serverId = await addServer('Main', 'support@example.com');
    const support = await addDestination(serverId, 'Support', 'support@example.com');
    const billing = await addDestination(serverId, 'Billing', 'Billing@Example.com');
    imap.append('support@example.com', 'INBOX', rawMail({ to: 'support@example.com', subject: 'one' }));
    imap.append('support@example.com', 'INBOX', rawMail({ to: 'billing@example.com', subject: 'two' }));
    imap.append(
      'support@example.com',
      'INBOX',
      rawMail({ to: 'support@example.com', cc: 'billing@example.com', subject: 'both' }),
    );
    imap.append('support@example.com', 'INBOX', rawMail({ to: 'nobody@example.com', subject: 'lost' }));
    imap.append('support@example.com', 'INBOX', rawMail({ to: 'support@example.com', subject: 'read in Outlook' }), {
      flags: ['\\Seen'],
    });
    imap.append('support@example.com', 'INBOX', rawMail({ to: 'support@example.com.evil.test', subject: 'lookalike' }));

    await h.inbound.start();
    const supportMessages = await feedUntil(support, 3);
    const billingMessages = await feedUntil(billing, 2);
    assert.deepEqual(
      supportMessages.map((m) => m.subject),
      ['one', 'both', 'read in Outlook'],
    );
    assert.deepEqual(
      billingMessages.map((m) => m.subject),
      ['two', 'both'],
    );
    assert.deepEqual(
      supportMessages.map((m) => m.seq),
      [1, 2, 3],
    );

    const unrouted = await eventually(async () => {
      const res = await h.call<Obj>('GET', `/api/v1/tenants/${tenantId}/servers/${serverId}/messages?status=unrouted`);
      return res.body.messages.length === 2 ? (res.body.messages as Obj[]) : undefined;
    });
    assert.deepEqual(unrouted.map((m) => m.subject).sort(), ['lookalike', 'lost']);

    // Post-processing ran after the commit: everything is \Seen now.
    await eventually(async () =>
      imap.messages('support@example.com', 'INBOX').every((m) => m.flags.includes('\\Seen')) ? true : undefined,
    );
    // The watcher goes idle once its first pass (post-processing included) has returned.
    const status = await eventually(async () => {
      const res = await h.call<Obj>('GET', `/api/v1/tenants/${tenantId}/servers/${serverId}/status`);
      return res.body.inbound.state === 'idle' ? res : undefined;
    });
    assert.equal(status.body.inbound.lastUid.INBOX, 6);

    // A restart of the inbound side routes nothing again.
    await h.inbound.service.stop();
    const rows = await h.store.query<{ n: string }>('SELECT count(*) AS n FROM inbound_deliveries');
    assert.equal(Number(rows[0]?.n), 5);
  });

  it('lists the newest first with order=desc, paging back with before, and names misplaced cursors', async () => {
    const serverId = await addServer('Main', 'support@example.com');
    const support = await addDestination(serverId, 'Support', 'support@example.com');
    for (let n = 0; n < 7; n++) {
      imap.append('support@example.com', 'INBOX', rawMail({ to: 'support@example.com', subject: `n${n}` }));
    }
    await h.inbound.start();
    const arrival = await feedUntil(support, 7);
    const url = `/api/v1/tenants/${tenantId}/destinations/${support}/messages`;
    const pages: Obj[][] = [];
    let query = 'order=desc&limit=3';
    for (;;) {
      const res = await h.call<Obj>('GET', `${url}?${query}`);
      assert.equal(res.status, 200, res.raw);
      if (res.body.messages.length === 0) break;
      pages.push(res.body.messages);
      query = `order=desc&limit=3&before=${res.body.next}`;
    }
    assert.deepEqual(
      pages.map((p) => p.length),
      [3, 3, 1],
    );
    assert.deepEqual(
      pages.flat().map((m) => m.id),
      arrival.map((m) => m.id).reverse(),
      'every message once, newest first',
    );
    for (const [query, field] of [
      ['order=desc&after=2', 'after'],
      ['order=desc&wait=5', 'wait'],
      ['before=3', 'before'],
      ['order=sideways', 'order'],
    ] as const) {
      const res = await h.call<Obj>('GET', `${url}?${query}`);
      assert.equal(res.status, 400, query);
      assert.equal(res.body.error.code, 'VALIDATION_FAILED');
      assert.equal(res.body.error.field, field, `${query}: ${res.raw}`);
    }
  });

  it('moves what it routed, and retries an action that failed on the next pass without routing again', async () => {
    imap.createMailbox('support@example.com', 'Archive');
    const serverId = await addServer('Main', 'support@example.com');
    const patched = await h.call<Obj>('PATCH', `/api/v1/tenants/${tenantId}/servers/${serverId}`, {
      postProcess: 'move:Archive',
    });
    assert.equal(patched.status, 200, patched.raw);
    const support = await addDestination(serverId, 'Support', 'support@example.com');
    imap.faults.reply('UID MOVE', 'NO', { text: 'Archive is busy' });
    imap.append('support@example.com', 'INBOX', rawMail({ subject: 'one' }));
    imap.append('support@example.com', 'INBOX', rawMail({ subject: 'two' }));
    await h.inbound.start();
    await feedUntil(support, 2);
    const progress = async (): Promise<number> => {
      const rows = await h.store.query<{ uid: string }>(
        'SELECT post_processed_uid AS uid FROM mailbox_checkpoints WHERE server_id = $1',
        [serverId],
      );
      return Number(rows[0]?.uid);
    };
    // The move was refused: both stay in INBOX and the progress mark stays before them.
    await eventually(async () => (h.logLines.some((l) => l.includes('post-processing failed')) ? true : undefined));
    assert.equal(imap.messages('support@example.com', 'INBOX').length, 2);
    assert.equal(await progress(), 0);

    // The next pass (a new message through IDLE) moves the two left behind, then the new one.
    imap.append('support@example.com', 'INBOX', rawMail({ subject: 'three' }));
    await eventually(async () => (imap.messages('support@example.com', 'Archive').length === 3 ? true : undefined));
    assert.equal(imap.messages('support@example.com', 'INBOX').length, 0);
    await eventually(async () => ((await progress()) === 3 ? true : undefined));
    const routed = await feedUntil(support, 3);
    assert.deepEqual(
      routed.map((m) => m.subject),
      ['one', 'two', 'three'],
    );
  });

  it('picks up a new message through IDLE while watching', async () => {
    const serverId = await addServer('Main', 'support@example.com');
    const support = await addDestination(serverId, 'Support', 'support@example.com');
    await h.inbound.start();
    await eventually(async () => (h.inbound.status(serverId).state === 'idle' ? true : undefined));
    const started = Date.now();
    imap.append('support@example.com', 'INBOX', rawMail({ subject: 'live' }));
    const got = await feed(support, 0, 10);
    assert.equal(got.messages[0]?.subject, 'live');
    assert.ok(Date.now() - started < 3000, `routed in ${Date.now() - started} ms`);
  });

  it('keeps a second connection in IDLE when two sessions are allowed, and uses one when one is', async () => {
    const two = await addServer('Two sessions', 'support@example.com');
    const support = await addDestination(two, 'Support', 'support@example.com');
    const one = await addServer('One session', 'other@example.com', { maxSessions: 1 });
    const other = await addDestination(one, 'Other', 'other@example.com');
    await h.inbound.start();
    await eventually(async () => (imap.connections === 3 ? true : undefined));
    for (let n = 0; n < 3; n++) {
      imap.append('support@example.com', 'INBOX', rawMail({ subject: `two ${n}` }));
      imap.append('other@example.com', 'INBOX', rawMail({ to: 'other@example.com', subject: `one ${n}` }));
      await feedUntil(support, n + 1);
      await feedUntil(other, n + 1);
    }
    assert.equal(imap.connections, 3, 'two for the first server, one for the second');
  });

  it('keeps one account working while another has a wrong password and a third an unreachable host', async () => {
    const good = await addServer('Good', 'support@example.com');
    const support = await addDestination(good, 'Support', 'support@example.com');
    const bad = await addServer('Bad password', 'other@example.com', {
      auth: { method: 'password', password: 'wrong' },
    });
    const unreachable = await addServer('Unreachable', 'x@example.com', { port: 1 });
    await h.inbound.start();
    imap.append('support@example.com', 'INBOX', rawMail({ subject: 'still routed' }));
    await feedUntil(support, 1, 5_000);
    await eventually(async () => (h.inbound.status(bad).state === 'authError' ? true : undefined));
    await eventually(async () => (h.inbound.status(unreachable).state === 'connectError' ? true : undefined));
    const badStatus = await h.call<Obj>('GET', `/api/v1/tenants/${tenantId}/servers/${bad}/status`);
    assert.match(badStatus.body.inbound.lastError, /refused the login/);
    const downStatus = await h.call<Obj>('GET', `/api/v1/tenants/${tenantId}/servers/${unreachable}/status`);
    assert.match(downStatus.body.inbound.lastError, /refused the connection/);
    assert.ok(!JSON.stringify(badStatus.body).includes('wrong'), 'no password in the status');
  });

  it('routes nothing twice after a UIDVALIDITY reset, and raises one alert', async () => {
    const serverId = await addServer('Main', 'support@example.com');
    const support = await addDestination(serverId, 'Support', 'support@example.com');
    for (let i = 0; i < 3; i++) imap.append('support@example.com', 'INBOX', rawMail({ subject: `before ${i}` }));
    await h.inbound.start();
    await feedUntil(support, 3);
    imap.resetUidValidity('support@example.com', 'INBOX');
    imap.append('support@example.com', 'INBOX', rawMail({ subject: 'after' }));
    const t0 = Date.now();
    const all = await feedUntil(support, 4);
    assert.ok(Date.now() - t0 < 3000, 'the reset is noticed through IDLE, not a safety poll');
    // A later message as a barrier: passes over a mailbox run one after another, so once it is
    // routed a wrong second copy would be in the feed before it (no pause needed to let one show).
    imap.append('support@example.com', 'INBOX', rawMail({ subject: 'barrier' }));
    const again = await feedUntil(support, 5);
    assert.deepEqual(
      again.map((m) => m.subject),
      ['before 0', 'before 1', 'before 2', 'after', 'barrier'],
    );
    assert.equal(all.length, 4);
    const alerts = await h.store.alerts.listByServer(serverId);
    assert.equal(alerts.length, 1);
    assert.equal(alerts[0]?.kind, 'uidvalidity-changed');
  });

  it('quarantines what cannot be parsed and routes the messages around it', async () => {
    const serverId = await addServer('Main', 'support@example.com');
    const support = await addDestination(serverId, 'Support', 'support@example.com');
    imap.append('support@example.com', 'INBOX', rawMail({ subject: 'first' }));
    const deep =
      'From: a@example.net\r\nTo: support@example.com\r\nSubject: deep\r\nMIME-Version: 1.0\r\n' +
      Array.from({ length: 300 }, (_, i) => `Content-Type: multipart/mixed; boundary="b${i}"\r\n\r\n--b${i}\r\n`).join(
        '',
      );
    imap.append('support@example.com', 'INBOX', deep);
    imap.append(
      'support@example.com',
      'INBOX',
      `Subject: huge header\r\nX-Big: ${'a'.repeat(2 * 1024 * 1024)}\r\n\r\nbody`,
    );
    imap.append(
      'support@example.com',
      'INBOX',
      rawMail({ subject: 'bad charset', headers: { 'Content-Transfer-Encoding': '8bit' } }).replace(
        'charset=utf-8',
        'charset=x-unknown-charset',
      ) + '\xff\xfe broken bytes',
    );
    imap.append('support@example.com', 'INBOX', rawMail({ subject: 'last' }));
    await h.inbound.start();
    const routed = await feedUntil(support, 3);
    assert.deepEqual(
      routed.map((m) => m.subject),
      ['first', 'bad charset', 'last'],
    );
    const quarantined = await h.call<Obj>(
      'GET',
      `/api/v1/tenants/${tenantId}/servers/${serverId}/messages?status=quarantined`,
    );
    const reasons = quarantined.body.messages.map((m: Obj) => String(m.quarantineReason).split(':')[0]).sort();
    assert.deepEqual(reasons, ['header-too-large', 'mime-too-deep']);
    await eventually(async () => (h.inbound.status(serverId).lastUid.INBOX === 5 ? true : undefined));
  });

  it('quarantines a message the server lists but does not send, with its header, and routes the rest', async () => {
    const serverId = await addServer('Main', 'support@example.com');
    const support = await addDestination(serverId, 'Support', 'support@example.com');
    for (const subject of ['first', 'second', 'third']) {
      imap.append('support@example.com', 'INBOX', rawMail({ subject }));
    }
    // UID 2 is found by SEARCH, then left out of the answer to the FETCH of the sources.
    imap.faults.omitFromFetch(2);
    await h.inbound.start();
    const routed = await feedUntil(support, 2);
    assert.deepEqual(
      routed.map((m) => m.subject),
      ['first', 'third'],
    );
    const quarantinedOf = async (): Promise<Obj[]> =>
      (await h.call<Obj>('GET', `/api/v1/tenants/${tenantId}/servers/${serverId}/messages?status=quarantined`)).body
        .messages as Obj[];
    const [failed, ...others] = await quarantinedOf();
    assert.deepEqual(others, []);
    assert.match(String(failed?.quarantineReason), /^fetch-failed: /);
    assert.equal(failed?.subject, 'second', 'its subject, read from the header');
    await eventually(async () => (h.inbound.status(serverId).lastUid.INBOX === 3 ? true : undefined));
    // Passed for good: the next message is routed and the failed one is not fetched again.
    imap.append('support@example.com', 'INBOX', rawMail({ subject: 'fourth' }));
    const after = await feedUntil(support, 3);
    assert.equal(after[2]?.subject, 'fourth');
    assert.equal((await quarantinedOf()).length, 1);
  });

  it('serves a message, its raw source and attachments, and lets one agent claim it', async () => {
    const serverId = await addServer('Main', 'support@example.com');
    const support = await addDestination(serverId, 'Support', 'support@example.com');
    const withAttachment = [
      'From: Customer <customer@example.net>',
      'To: support@example.com',
      'Subject: invoice',
      'Message-ID: <att-1@example.net>',
      'MIME-Version: 1.0',
      'Content-Type: multipart/mixed; boundary="XX"',
      '',
      '--XX',
      'Content-Type: text/plain; charset=utf-8',
      '',
      'See attached.',
      '--XX',
      'Content-Type: application/pdf; name="invoice.pdf"',
      'Content-Disposition: attachment; filename="invoice.pdf"',
      'Content-Transfer-Encoding: base64',
      '',
      Buffer.from('%PDF-1.4 fake').toString('base64'),
      '--XX',
      // RFC 2231 name beyond Latin-1: Node refuses it raw in a header value (it was a 500).
      "Content-Type: application/pdf; name*=UTF-8''Rechnung%E2%80%94%E2%82%AC%20%E6%97%A5.pdf",
      "Content-Disposition: attachment; filename*=UTF-8''Rechnung%E2%80%94%E2%82%AC%20%E6%97%A5.pdf",
      '',
      'second',
      '--XX--',
      '',
    ].join('\r\n');
    imap.append('support@example.com', 'INBOX', withAttachment);
    await h.inbound.start();
    const [item] = await feedUntil(support, 1);
    const base = `/api/v1/tenants/${tenantId}/destinations/${support}/messages/${item?.id}`;
    const detail = await h.call<Obj>('GET', base);
    assert.equal(detail.body.text.trim(), 'See attached.');
    assert.equal(detail.body.messageId, 'att-1@example.net');
    assert.equal(detail.body.attachments[0].filename, 'invoice.pdf');
    const raw = await h.app.inject({
      method: 'GET',
      url: `${base}/raw`,
      headers: { authorization: `Bearer ${h.adminToken}` },
    });
    assert.equal(raw.body, withAttachment);
    const attachment = await h.app.inject({
      method: 'GET',
      url: `${base}/attachments/0`,
      headers: { authorization: `Bearer ${h.adminToken}` },
    });
    assert.equal(attachment.headers['content-type'], 'application/pdf');
    assert.equal(attachment.body, '%PDF-1.4 fake');
    assert.equal(
      attachment.headers['content-disposition'],
      `attachment; filename="invoice.pdf"; filename*=UTF-8''invoice.pdf`,
    );
    assert.equal(attachment.headers['x-content-type-options'], 'nosniff');
    const named = await h.app.inject({
      method: 'GET',
      url: `${base}/attachments/1`,
      headers: { authorization: `Bearer ${h.adminToken}` },
    });
    assert.equal(named.statusCode, 200, named.body);
    assert.equal(
      named.headers['content-disposition'],
      `attachment; filename="Rechnung__ _.pdf"; filename*=UTF-8''Rechnung%E2%80%94%E2%82%AC%20%E6%97%A5.pdf`,
    );
    assert.equal(named.body, 'second');
    assert.equal((await h.call<Obj>('POST', `${base}/claim`, { agent: 'desk-1' })).status, 200);
    assert.equal(
      (await h.call<Obj>('POST', `${base}/claim`, { agent: 'desk-1' })).status,
      200,
      'claiming again is idempotent',
    );
    const second = await h.call<Obj>('POST', `${base}/claim`, { agent: 'desk-2' });
    assert.equal(second.status, 409);
    assert.equal(second.body.error.code, 'ALREADY_CLAIMED');
    // Another agent cannot acknowledge what desk-1 claimed; desk-1 can.
    const otherAck = await h.call<Obj>('POST', `${base}/ack`, { agent: 'desk-2' });
    assert.equal(otherAck.status, 409, otherAck.raw);
    assert.equal(otherAck.body.error.code, 'ALREADY_CLAIMED');
    assert.equal(otherAck.body.error.details.claimedBy, 'desk-1');
    const stillOpen = await h.store.query<{ acked_at: Date | null }>(
      'SELECT acked_at FROM inbound_deliveries WHERE message_id = $1',
      [item?.id],
    );
    assert.equal(stillOpen[0]?.acked_at, null, 'the refused acknowledgement changed nothing');
    const acked = await h.call<Obj>('POST', `${base}/ack`, { agent: 'desk-1' });
    assert.equal(acked.status, 200, acked.raw);
    assert.ok(acked.body.ackedAt);
  });
});
