import assert from 'node:assert/strict';
import { startFakeImap, type FakeImapServer } from '../../src/harness/fake-imap/index.js';
import type { TraceEntry } from '../../src/harness/fake-imap/session.js';
import { loopbackImap, loopbackServerBody } from '../support/fixtures.js';
import { FAST_INBOUND, openApiHarness, type ApiHarness } from '../support/api-harness.js';
import { isPostgresReachable } from '../support/database.js';
import { eventually, rawMail } from '../support/mail.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON answers in tests

const USER = 'support@example.com';

/**
 * A Gmail mailbox watched in several folders (issue 27): Gmail shows labels as folders, so one
 * message is in INBOX, in each of its labels and in `[Gmail]/All Mail`. The fake IMAP server in
 * Gmail mode gives the same X-GM-MSGID in each; the engine routes the message once and does not
 * fetch the other copies.
 */
describe('Gmail: a mailbox watched in several folders', function () {
  this.timeout(120_000);

  /** Started per test; each closes itself (`after`) however the test ends. */
  async function setUp(after: (close: () => Promise<void>) => void): Promise<{
    h: ApiHarness;
    imap: FakeImapServer;
    tenantId: string;
    /** The `UID FETCH` commands that asked for whole sources, each with the folder selected then. */
    sourceFetches: string[];
  }> {
    const sourceFetches: string[] = [];
    const selected = new Map<number, string>();
    const trace = (entry: TraceEntry): void => {
      if (entry.direction !== 'client') return;
      const select = /^\S+ SELECT "?([^"]+)"?/i.exec(entry.text);
      if (select) selected.set(entry.sessionId, select[1] as string);
      if (/UID FETCH .*BODY\.PEEK\[\]/i.test(entry.text)) sourceFetches.push(selected.get(entry.sessionId) ?? '?');
    };
    const imap = await startFakeImap({
      gmail: true,
      trace,
      users: [{ user: USER, password: 'imap-pass', mailboxes: ['Support'] }],
    });
    after(() => imap.close());
    const h = await openApiHarness((await isPostgresReachable()) ? 'postgres' : 'pglite', FAST_INBOUND);
    after(() => h.close());
    const tenantId = (await h.call<Obj>('POST', '/api/v1/tenants', { name: 'Gmail' })).body.id as string;
    return { h, imap, tenantId, sourceFetches };
  }

  let cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    const done = cleanups;
    cleanups = [];
    for (const close of done.reverse()) await close();
  });
  const after = (close: () => Promise<void>): void => {
    cleanups.push(close);
  };

  async function addServer(h: ApiHarness, imap: FakeImapServer, tenantId: string, folders: string[]): Promise<string> {
    const res = await h.call<Obj>(
      'POST',
      `/api/v1/tenants/${tenantId}/servers`,
      loopbackServerBody('Gmail', imap.port, USER, 'imap-pass', {
        imap: { ...loopbackImap(imap.port, USER, 'imap-pass'), folders },
      }),
    );
    assert.equal(res.status, 201, res.raw);
    assert.deepEqual(res.body.imap.folders, folders);
    return res.body.id as string;
  }

  it('routes a message in INBOX and a label once, without fetching the copy', async () => {
    const { h, imap, tenantId, sourceFetches } = await setUp(after);
    const serverId = await addServer(h, imap, tenantId, ['INBOX', 'Support']);
    const destination = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/destinations`, {
      name: 'Support',
      address: USER,
      serverId,
    });
    assert.equal(destination.status, 201, destination.raw);
    // In INBOX and labelled Support (and, as every message, in All Mail): the same X-GM-MSGID.
    imap.append(USER, 'INBOX', rawMail({ subject: 'labelled' }), { alsoIn: ['Support'] });
    // Labelled only (a filter skipped the inbox).
    imap.append(USER, 'Support', rawMail({ subject: 'label only' }));
    const [inInbox] = imap.messages(USER, 'INBOX');
    assert.equal(imap.messages(USER, 'Support')[0]?.gmMsgId, inInbox?.gmMsgId);
    assert.equal(imap.messages(USER, '[Gmail]/All Mail').length, 2);

    await h.inbound.start();
    await eventually(async () => (h.inbound.status(serverId).lastUid.Support === 2 ? true : undefined));
    const rows = await h.store.query<{ subject: string; mailbox: string; status: string; email_id: string }>(
      'SELECT subject, mailbox, status, email_id FROM inbound_messages WHERE server_id = $1 ORDER BY ingested_at, uid',
      [serverId],
    );
    assert.deepEqual(
      rows.map((r) => [r.subject, r.mailbox, r.status]),
      [
        ['labelled', 'INBOX', 'routed'],
        ['label only', 'Support', 'routed'],
      ],
    );
    assert.equal(rows[0]?.email_id, inInbox?.gmMsgId);
    const feed = await h.call<Obj>('GET', `/api/v1/tenants/${tenantId}/destinations/${destination.body.id}/messages`);
    assert.deepEqual(
      (feed.body.messages as Obj[]).map((m) => m.subject),
      ['labelled', 'label only'],
    );
    // Support's UID 1 (the copy) was never asked for: only UID 2 was fetched there.
    assert.deepEqual(sourceFetches, ['INBOX', 'Support']);

    // Labelled later (COPY keeps the X-GM-MSGID), and a new pass: still once.
    imap.append(USER, 'INBOX', rawMail({ subject: 'second' }), { alsoIn: ['Support'] });
    await eventually(async () => (h.inbound.status(serverId).lastUid.Support === 3 ? true : undefined));
    const count = await h.store.query<{ n: string }>(
      'SELECT count(*) AS n FROM inbound_messages WHERE server_id = $1',
      [serverId],
    );
    assert.equal(Number(count[0]?.n), 3);
  });

  it('refuses to watch [Gmail]/All Mail, and skips a folder the server lists as \\All', async () => {
    const { h, imap, tenantId } = await setUp(after);
    const refused = await h.call<Obj>(
      'POST',
      `/api/v1/tenants/${tenantId}/servers`,
      loopbackServerBody('Gmail', imap.port, USER, 'imap-pass', {
        imap: { ...loopbackImap(imap.port, USER, 'imap-pass'), folders: ['INBOX', '[Gmail]/All Mail'] },
      }),
    );
    assert.equal(refused.status, 400, refused.raw);
    assert.equal(refused.body.error.field, 'imap.folders');
    assert.match(refused.body.error.message, /sent mail/);

    // All Mail under another name (the mailbox's language): known by its special use.
    imap.createMailbox(USER, 'Alle Nachrichten', { specialUse: '\\All' });
    imap.append(USER, 'Alle Nachrichten', rawMail({ subject: 'sent by us' }));
    imap.append(USER, 'INBOX', rawMail({ subject: 'inbound' }));
    const serverId = await addServer(h, imap, tenantId, ['Alle Nachrichten', 'INBOX']);
    await h.inbound.start();
    await eventually(async () => (h.inbound.status(serverId).lastUid.INBOX === 1 ? true : undefined));
    const rows = await h.store.query<{ subject: string }>('SELECT subject FROM inbound_messages WHERE server_id = $1', [
      serverId,
    ]);
    assert.deepEqual(
      rows.map((r) => r.subject),
      ['inbound'],
    );
    const status = await h.call<Obj>('GET', `/api/v1/tenants/${tenantId}/servers/${serverId}/status`);
    assert.equal(status.status, 200, status.raw);
    assert.equal(status.body.inbound.state, 'idle');
    assert.match(status.body.inbound.notWatched['Alle Nachrichten'], /All Mail \(\\All\): it holds sent mail/);
  });
});
