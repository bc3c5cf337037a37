import assert from 'node:assert/strict';
import { startFakeImap, type FakeImapServer } from '../../src/harness/fake-imap/index.js';
import type { InboundOptions } from '../../src/inbound/index.js';
import { loopbackServerBody } from '../support/fixtures.js';
import { FAST_INBOUND, openApiHarness, type ApiHarness } from '../support/api-harness.js';
import { isPostgresReachable } from '../support/database.js';
import { eventually, rawMail } from '../support/mail.js';
import { postgresMissing, skipWithout } from '../support/requirements.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON answers in tests

const USER = 'support@example.com';

/**
 * How passes and sessions behave when something goes wrong in the middle: a failed action, a
 * destination deleted, a session that fails after its login or ends during a pass, a stop.
 */
describe('inbound passes and sessions under trouble', function () {
  this.timeout(120_000);
  let current: ApiHarness | undefined;
  let imap: FakeImapServer;
  let tenantId: string;

  beforeEach(async () => {
    imap = await startFakeImap({ users: [{ user: USER, password: 'imap-pass' }] });
  });

  afterEach(async function () {
    if (this.currentTest?.state === 'failed' && current) {
      process.stdout.write(`--- engine log of the failed test:\n${current.logLines.slice(-40).join('\n')}\n`);
    }
    await current?.close();
    current = undefined;
    await imap.close();
  });

  /** The harness with these inbound options (over the fast test timings), and a tenant. */
  async function open(options: Partial<InboundOptions>): Promise<ApiHarness> {
    const h = await openApiHarness((await isPostgresReachable()) ? 'postgres' : 'pglite', {
      ...FAST_INBOUND,
      ...options,
    });
    current = h;
    tenantId = (await h.call<Obj>('POST', '/api/v1/tenants', { name: 'Passes' })).body.id as string;
    return h;
  }

  async function addServer(harness: ApiHarness, extra: Obj = {}): Promise<string> {
    const res = await harness.call<Obj>(
      'POST',
      `/api/v1/tenants/${tenantId}/servers`,
      loopbackServerBody('Main', imap.port, USER, 'imap-pass', extra),
    );
    assert.equal(res.status, 201, res.raw);
    return res.body.id as string;
  }

  async function addDestination(harness: ApiHarness, serverId: string, name: string, address: string): Promise<string> {
    const res = await harness.call<Obj>('POST', `/api/v1/tenants/${tenantId}/destinations`, {
      name,
      address,
      serverId,
    });
    assert.equal(res.status, 201, res.raw);
    return res.body.id as string;
  }

  async function feed(harness: ApiHarness, destinationId: string): Promise<Obj[]> {
    const res = await harness.call<Obj>('GET', `/api/v1/tenants/${tenantId}/destinations/${destinationId}/messages`);
    return res.body.messages as Obj[];
  }

  async function postProcessedUid(harness: ApiHarness, serverId: string): Promise<number> {
    const rows = await harness.store.query<{ uid: string }>(
      'SELECT post_processed_uid AS uid FROM mailbox_checkpoints WHERE server_id = $1',
      [serverId],
    );
    return Number(rows[0]?.uid);
  }

  const seenFlags = (): string =>
    imap
      .messages(USER, 'INBOX')
      .map((m) => (m.flags.includes('\\Seen') ? 'S' : '-'))
      .join('');

  it('keeps the post-processing mark before a batch whose action failed, whatever later batches do', async () => {
    const h = await open({ batchMaxCount: 1 });
    const serverId = await addServer(h, { postProcess: 'seen' });
    await addDestination(h, serverId, 'Support', USER);
    for (let i = 0; i < 5; i++) imap.append(USER, 'INBOX', rawMail({ subject: `m${i}` }));
    imap.faults.reply('UID STORE', 'NO', { times: 1 }); // the first batch's \Seen
    await h.inbound.start();
    await eventually(async () => (h.inbound.status(serverId).lastUid.INBOX === 5 ? true : undefined));
    assert.equal(seenFlags(), '-SSSS');
    assert.equal(await postProcessedUid(h, serverId), 0, 'the mark stays before the message left behind');

    // The next pass runs the action left behind, then goes on.
    imap.append(USER, 'INBOX', rawMail({ subject: 'm5' }));
    await eventually(async () => (seenFlags() === 'SSSSSS' ? true : undefined));
    await eventually(async () => ((await postProcessedUid(h, serverId)) === 6 ? true : undefined));
  });

  it('backs off when sessions fail after their login, as when connections are refused', async () => {
    const h = await open({ mailboxes: ['INBOX', 'Missing'], reconnectMinMs: 100, reconnectMaxMs: 60_000 });
    const serverId = await addServer(h);
    await h.inbound.start();
    // Each session logs in and syncs INBOX, then fails on the missing mailbox.
    const status = await eventually(async () => {
      const s = h.inbound.status(serverId);
      return s.reconnects >= 3 && s.nextAttemptAt !== null && s.lastErrorAt !== null ? s : undefined;
    });
    assert.equal(status.state, 'connectError');
    // The fourth failure or a later one: at least half of 100 ms · 2³.
    const delay = Date.parse(String(status.nextAttemptAt)) - Date.parse(String(status.lastErrorAt));
    assert.ok(delay >= 400, `waits ${delay} ms before reconnect ${status.reconnects + 1}`);
  });

  it('routes to the other destinations a message of a destination deleted during the pass', async () => {
    const h = await open({ batchMaxCount: 2 });
    const serverId = await addServer(h);
    const sales = await addDestination(h, serverId, 'Sales', 'sales@example.com');
    const support = await addDestination(h, serverId, 'Support', USER);
    for (let i = 0; i < 8; i++) {
      imap.append(USER, 'INBOX', rawMail({ subject: `both ${i}`, to: 'sales@example.com', cc: USER }));
    }
    imap.append(USER, 'INBOX', rawMail({ subject: 'sales only', to: 'sales@example.com' }));
    imap.faults.delay('UID FETCH', 400, { times: Infinity });
    await h.inbound.start();
    await eventually(async () => ((await h.store.messages.countByServer(serverId)) >= 2 ? true : undefined));
    const deleted = await h.call<Obj>('DELETE', `/api/v1/tenants/${tenantId}/destinations/${sales}`);
    assert.equal(deleted.status, 204, deleted.raw);
    await eventually(async () => (h.inbound.status(serverId).lastUid.INBOX === 9 ? true : undefined), 30_000);
    const stored = await h.store.query<{ subject: string; status: string }>(
      'SELECT subject, status FROM inbound_messages WHERE server_id = $1 ORDER BY uid',
      [serverId],
    );
    assert.deepEqual(
      stored.map((m) => m.status),
      [...Array<string>(8).fill('routed'), 'unrouted'],
      'nothing quarantined; the message only the deleted destination wanted is unrouted',
    );
    assert.deepEqual(
      (await feed(h, support)).map((m) => m.subject),
      stored.slice(0, 8).map((m) => m.subject),
    );
  });

  it('gives a new session its own pass when the last one ended during a pass', async function () {
    skipWithout(this, await postgresMissing()); // holds a row lock from a second connection
    const h = await open({ safetyPollMs: 500 });
    const serverId = await addServer(h);
    const support = await addDestination(h, serverId, 'Support', USER);
    imap.append(USER, 'INBOX', rawMail({ subject: 'first' }));
    await h.inbound.start();
    await eventually(async () => (h.inbound.status(serverId).state === 'idle' ? true : undefined));
    await eventually(async () => ((await feed(h, support)).length === 1 ? true : undefined));

    // A pass that cannot commit yet: another transaction holds the mailbox's checkpoint row.
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let locked!: () => void;
    const lockTaken = new Promise<void>((resolve) => (locked = resolve));
    const holder = h.store.transaction(async (tx) => {
      await tx.checkpoints.postProcessedUpTo(serverId, 'INBOX', imap.mailbox(USER, 'INBOX').uidValidity, 0);
      locked();
      await held;
    });
    try {
      await lockTaken;
      imap.append(USER, 'INBOX', rawMail({ subject: 'second' }));
      await eventually(async () => {
        const waiting = await h.store.query<{ n: string }>('SELECT count(*) AS n FROM pg_locks WHERE NOT granted');
        return Number(waiting[0]?.n) > 0 ? true : undefined;
      });
      // Meanwhile the session ends: its second connection (idling, re-issuing IDLE) is dropped,
      // then the watcher closes the first one.
      imap.faults.dropConnection('IDLE');
      await eventually(async () =>
        imap.connections === 0 || h.inbound.status(serverId).reconnects > 0 ? true : undefined,
      );
      // Time for a reconnect (after 100 ms) to log in and ask for its first pass while the old
      // session's pass still cannot commit.
      await new Promise((resolve) => setTimeout(resolve, 1000));
    } finally {
      release();
      await holder;
    }

    await eventually(async () => ((await feed(h, support)).length === 2 ? true : undefined));
    await eventually(async () => (h.inbound.status(serverId).state === 'idle' ? true : undefined));
    imap.append(USER, 'INBOX', rawMail({ subject: 'third' }));
    await eventually(async () => ((await feed(h, support)).length === 3 ? true : undefined));
    const status = h.inbound.status(serverId);
    assert.equal(
      status.reconnects,
      1,
      `one reconnect, not one more for a pass on the old session: ${status.lastError}`,
    );
    assert.equal(h.logLines.filter((l) => l.includes('mailbox connection failed')).length, 1);
  });

  it('stops after the batch it is storing, not after the whole backlog', async () => {
    const h = await open({ batchMaxCount: 2 });
    const serverId = await addServer(h);
    await addDestination(h, serverId, 'Support', USER);
    for (let i = 0; i < 40; i++) imap.append(USER, 'INBOX', rawMail({ subject: `m${i}` }));
    imap.faults.delay('UID FETCH', 300, { times: Infinity });
    await h.inbound.start();
    await eventually(async () => ((await h.store.messages.countByServer(serverId)) >= 2 ? true : undefined));
    const before = await h.store.messages.countByServer(serverId);
    await h.inbound.stop();
    const stored = await h.store.messages.countByServer(serverId);
    assert.ok(stored <= before + 4, `stored ${stored} of 40 after stopping at ${before}`);
    const checkpoint = await h.store.checkpoints.get(serverId, 'INBOX');
    assert.equal(checkpoint?.lastUid, stored, 'the checkpoint is where storing stopped');

    // Nothing is lost: the next start goes on from there.
    imap.faults.clear();
    const again = h.restartInbound();
    await again.start();
    try {
      await eventually(async () => ((await h.store.messages.countByServer(serverId)) === 40 ? true : undefined));
    } finally {
      await again.stop();
    }
  });
  it('ends a safety sync that finds the mailbox unchanged without the database, and still reads new mail', async () => {
    const h = await open({ safetyPollMs: 200 });
    const serverId = await addServer(h, { postProcess: 'seen' });
    const support = await addDestination(h, serverId, 'Support', USER);
    imap.append(USER, 'INBOX', rawMail({ subject: 'first' }));
    // One failed \Seen: the first pass leaves an action to retry, so the next pass may not skip.
    imap.faults.reply('UID STORE', 'NO', { times: 1 });
    const checkpoints = h.store.checkpoints;
    const get = checkpoints.get.bind(checkpoints);
    let reads = 0;
    checkpoints.get = (id, mailbox) => {
      if (id === serverId) reads += 1;
      return get(id, mailbox);
    };
    await h.inbound.start();
    await eventually(async () => ((await feed(h, support)).length === 1 ? true : undefined));
    await eventually(async () => ((await postProcessedUid(h, serverId)) === 1 ? true : undefined));
    // Settled now: the safety syncs (every 200 ms) keep asking the server, not the database.
    const settledAt = reads;
    const contactBefore = h.inbound.status(serverId).lastContactAt;
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    assert.notEqual(h.inbound.status(serverId).lastContactAt, contactBefore, 'the safety syncs ran');
    assert.ok(reads <= settledAt + 1, `${reads - settledAt} checkpoint reads after the mailbox settled`);
    imap.append(USER, 'INBOX', rawMail({ subject: 'second' }));
    await eventually(async () => ((await feed(h, support)).length === 2 ? true : undefined));
    assert.ok(reads > settledAt, 'a new message is read past the checkpoint');
  });
});
