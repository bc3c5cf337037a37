import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startFakeImap, type FakeImapServer } from '../../src/harness/fake-imap/index.js';
import { loopbackServerBody } from '../support/fixtures.js';
import { openApiHarness, type ApiHarness } from '../support/api-harness.js';
import { isPostgresReachable } from '../support/database.js';
import { eventually, rawMail } from '../support/mail.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON answers in tests

const USER = 'support@example.com';

/** A message with these headers besides From, To and the MIME ones. */
function mailWith(headers: string[]): string {
  return [
    'From: Customer <customer@example.net>',
    `To: ${USER}`,
    ...headers,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    '',
    'hello',
    '',
  ].join('\r\n');
}

/**
 * Mail the database would refuse as parsed, through the whole pipeline: each is stored (routed
 * or quarantined) or, when the database refuses even a minimal row, passed with an alert. Never
 * does one stop the mailbox: the message after it is always routed.
 */
describe('inbound mail the database refuses', function () {
  this.timeout(120_000);
  let h: ApiHarness;
  let imap: FakeImapServer;
  let tenantId: string;
  let serverId: string;
  let destinationId: string;

  beforeEach(async () => {
    h = await openApiHarness((await isPostgresReachable()) ? 'postgres' : 'pglite');
    imap = await startFakeImap({ users: [{ user: USER, password: 'imap-pass' }] });
    tenantId = (await h.call<Obj>('POST', '/api/v1/tenants', { name: 'Hostile' })).body.id as string;
    const server = await h.call<Obj>(
      'POST',
      `/api/v1/tenants/${tenantId}/servers`,
      loopbackServerBody('Main', imap.port, USER, 'imap-pass'),
    );
    assert.equal(server.status, 201, server.raw);
    serverId = server.body.id as string;
    const destination = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/destinations`, {
      name: 'Support',
      address: USER,
      serverId,
    });
    destinationId = destination.body.id as string;
  });

  afterEach(async function () {
    if (this.currentTest?.state === 'failed') {
      process.stdout.write(`--- engine log of the failed test:\n${h.logLines.slice(-40).join('\n')}\n`);
    }
    await h.inbound.service.stop();
    await h.store.query('DROP TRIGGER IF EXISTS test_refuse_message ON inbound_messages');
    await h.store.query('DROP FUNCTION IF EXISTS test_refuse_message()');
    await h.store.query('DROP SEQUENCE IF EXISTS test_refusals');
    await h.close();
    await imap.close();
  });

  /** Makes the database refuse every inbound message row for which `condition` (on NEW) holds. */
  async function refuseRowsWhere(condition: string): Promise<void> {
    await h.store.query(`CREATE FUNCTION test_refuse_message() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF ${condition} THEN RAISE EXCEPTION 'refused by the test'; END IF;
        RETURN NEW;
      END $$`);
    await h.store.query(`CREATE TRIGGER test_refuse_message BEFORE INSERT ON inbound_messages
      FOR EACH ROW EXECUTE FUNCTION test_refuse_message()`);
  }

  const feed = async (): Promise<Obj[]> =>
    (await h.call<Obj>('GET', `/api/v1/tenants/${tenantId}/destinations/${destinationId}/messages`)).body
      .messages as Obj[];

  const quarantined = async (): Promise<Obj[]> =>
    (await h.call<Obj>('GET', `/api/v1/tenants/${tenantId}/servers/${serverId}/messages?status=quarantined`)).body
      .messages as Obj[];

  /** Waits until the message after the hostile ones is routed, and answers the subjects routed. */
  async function routedUntilAfter(): Promise<string[]> {
    const list = await eventually(async () => {
      const got = await feed();
      return got.some((m) => m.subject === 'after') ? got : undefined;
    }, 30_000);
    return list.map((m) => String(m.subject));
  }

  it('routes a message dated in the year 10000 as one without a date', async () => {
    imap.append(USER, 'INBOX', rawMail({ subject: 'before' }));
    imap.append(
      USER,
      'INBOX',
      mailWith(['Subject: far future', 'Date: Mon, 1 Jan 10000 00:00:00 +0000', 'Message-ID: <far@example.net>']),
    );
    imap.append(USER, 'INBOX', rawMail({ subject: 'after' }));
    await h.inbound.start();
    assert.deepEqual(await routedUntilAfter(), ['before', 'far future', 'after']);
    const [far] = await h.store.query<{ sent_at: Date | null }>(
      `SELECT sent_at FROM inbound_messages WHERE subject = 'far future'`,
    );
    assert.equal(far?.sent_at, null);
  });

  it('routes a message with an 8 KB Message-ID, keeping no Message-ID for it', async () => {
    const longId = `${randomBytes(6000).toString('base64url')}@example.net`;
    imap.append(USER, 'INBOX', rawMail({ subject: 'before' }));
    imap.append(USER, 'INBOX', mailWith(['Subject: long id', `Message-ID: <${longId}>`]));
    imap.append(USER, 'INBOX', rawMail({ subject: 'after', inReplyTo: longId }));
    await h.inbound.start();
    assert.deepEqual(await routedUntilAfter(), ['before', 'long id', 'after']);
    const rows = await h.store.query<{ message_id_header: string | null; dedupe_key: string; in_reply_to: null }>(
      `SELECT message_id_header, dedupe_key, in_reply_to FROM inbound_messages WHERE subject IN ('long id', 'after')
        ORDER BY uid`,
    );
    assert.equal(rows[0]?.message_id_header, null);
    assert.match(String(rows[0]?.dedupe_key), /^hash:[0-9a-f]{64}$/, 'deduplicated by its header hash');
    assert.equal(rows[1]?.in_reply_to, null, 'nor is it kept as the Message-ID a reply answers');
  });

  it('quarantines a message the database refuses, without the values it refused', async () => {
    // Refused on its Message-ID's dedupe key: the quarantined row must not carry it.
    await refuseRowsWhere(`NEW.dedupe_key = 'mid:refused@example.net' OR NEW.sent_at = '2001-02-03T04:05:06Z'`);
    imap.append(USER, 'INBOX', rawMail({ subject: 'before' }));
    imap.append(
      USER,
      'INBOX',
      mailWith(['Subject: refused', 'Date: Sat, 3 Feb 2001 04:05:06 +0000', 'Message-ID: <refused@example.net>']),
    );
    imap.append(USER, 'INBOX', rawMail({ subject: 'after' }));
    await h.inbound.start();
    assert.deepEqual(await routedUntilAfter(), ['before', 'after']);
    const [kept, ...others] = await quarantined();
    assert.deepEqual(others, []);
    assert.match(String(kept?.quarantineReason), /^store-error: .*refused by the test/);
    await eventually(async () => (h.inbound.status(serverId).lastUid.INBOX === 3 ? true : undefined));
  });

  it('tries again, without quarantining anything, when the database fails for a reason of its own', async () => {
    // The first two inserts of the message fail as a serialization failure would (SQLSTATE 40001).
    await h.store.query('CREATE SEQUENCE test_refusals');
    await h.store.query(`CREATE FUNCTION test_refuse_message() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.subject = 'unlucky' AND nextval('test_refusals') <= 2 THEN
          RAISE EXCEPTION 'could not serialize access' USING ERRCODE = '40001';
        END IF;
        RETURN NEW;
      END $$`);
    await h.store.query(`CREATE TRIGGER test_refuse_message BEFORE INSERT ON inbound_messages
      FOR EACH ROW EXECUTE FUNCTION test_refuse_message()`);
    imap.append(USER, 'INBOX', rawMail({ subject: 'before' }));
    imap.append(USER, 'INBOX', rawMail({ subject: 'unlucky' }));
    imap.append(USER, 'INBOX', rawMail({ subject: 'after' }));
    await h.inbound.start();
    assert.deepEqual(await routedUntilAfter(), ['before', 'unlucky', 'after']);
    assert.deepEqual(await quarantined(), []);
  });

  it('passes a message the database refuses even as quarantined, with an alert, and routes the next', async () => {
    await refuseRowsWhere(`NEW.uid = 2`);
    imap.append(USER, 'INBOX', rawMail({ subject: 'before' }));
    imap.append(USER, 'INBOX', rawMail({ subject: 'refused whatever it holds' }));
    imap.append(USER, 'INBOX', rawMail({ subject: 'after' }));
    await h.inbound.start();
    assert.deepEqual(await routedUntilAfter(), ['before', 'after']);
    assert.deepEqual(await quarantined(), []);
    const alerts = await h.store.alerts.listByServer(serverId);
    assert.deepEqual(
      alerts.map((a) => [a.kind, a.details.uid]),
      [['message-not-stored', 2]],
    );
    assert.match(alerts[0]?.message ?? '', /UID 2 of INBOX could not be stored.*refused by the test/);
    await eventually(async () => (h.inbound.status(serverId).lastUid.INBOX === 3 ? true : undefined));
    assert.equal(h.inbound.status(serverId).reconnects, 0, 'the watcher never had to reconnect');
    // It stays in the mailbox, untouched (not marked \Seen as the stored ones are).
    await eventually(async () =>
      imap
        .messages(USER, 'INBOX')
        .map((m) => m.flags.includes('\\Seen'))
        .join() === 'true,false,true'
        ? true
        : undefined,
    );
  });
});
