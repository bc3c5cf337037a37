import assert from 'node:assert/strict';
import { ImapFlow } from 'imapflow';
import { FAST_INBOUND, openApiHarness, type ApiHarness } from '../support/api-harness.js';
import { isPostgresReachable } from '../support/database.js';
import { startDovecot, type DovecotInstance } from '../support/dovecot.js';
import { eventually, rawMail } from '../support/mail.js';
import { dovecotMissing, skipWithout } from '../support/requirements.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON answers in tests

const USER = 'reset@example.com';
const MAILBOX = 'Support';
const ADDRESS = 'support@example.com';

/**
 * A UIDVALIDITY reset on a real server: the watched mailbox is deleted and recreated (Dovecot gives
 * it a new UIDVALIDITY) and the same messages are appended again, plus a new one. The engine
 * rescans, recognises the old messages by Message-ID, routes only the new one and raises one alert.
 */
describe('inbound UIDVALIDITY reset against Dovecot', function () {
  this.timeout(120_000);
  let dovecot: DovecotInstance;
  let h: ApiHarness;
  let client: ImapFlow;

  before(async function () {
    skipWithout(this, dovecotMissing());
    dovecot = await startDovecot({ users: [{ user: USER, password: 'pw' }] });
    h = await openApiHarness((await isPostgresReachable()) ? 'postgres' : 'pglite', {
      ...FAST_INBOUND,
      mailboxes: [MAILBOX],
    });
    client = new ImapFlow({
      host: dovecot.host,
      port: dovecot.port,
      secure: false,
      auth: { user: USER, pass: 'pw' },
      logger: false,
    });
    await client.connect();
  });

  after(async () => {
    await client?.logout().catch(() => undefined);
    await h?.close();
    await dovecot?.close();
  });

  const message = (n: number): string =>
    rawMail({ to: ADDRESS, subject: `message ${n}`, messageId: `reset-${n}@test` });

  async function uidValidity(): Promise<bigint> {
    const status = await client.status(MAILBOX, { uidValidity: true });
    assert.ok(status, `STATUS ${MAILBOX} failed`);
    return BigInt(status.uidValidity ?? 0);
  }

  it('routes nothing twice after the mailbox is deleted and recreated, and raises one alert', async () => {
    await client.mailboxCreate(MAILBOX);
    for (const n of [0, 1, 2]) await client.append(MAILBOX, message(n));
    const tenantId = (await h.call<Obj>('POST', '/api/v1/tenants', { name: 'Reset' })).body.id as string;
    const server = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/servers`, {
      name: 'Reset box',
      imap: {
        host: dovecot.host,
        port: dovecot.port,
        secure: false,
        user: USER,
        auth: { method: 'password', password: 'pw' },
      },
      smtp: { host: '127.0.0.1', port: 2525, auth: { mode: 'none' } },
    });
    assert.equal(server.status, 201, server.raw);
    const serverId = server.body.id as string;
    const destination = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/destinations`, {
      name: 'Support',
      address: ADDRESS,
      serverId,
    });
    const feed = async (): Promise<Obj[]> =>
      (
        await h.call<Obj>(
          'GET',
          `/api/v1/tenants/${tenantId}/destinations/${destination.body.id}/messages?after=0&limit=100`,
        )
      ).body.messages as Obj[];

    await h.inbound.start();
    await eventually(async () => ((await feed()).length >= 3 ? true : undefined), 30_000);
    await h.inbound.service.stop();

    // The reset: delete and recreate the mailbox, append the same three messages and a new one.
    const before = await uidValidity();
    await client.mailboxDelete(MAILBOX);
    await client.mailboxCreate(MAILBOX);
    for (const n of [0, 1, 2, 3]) await client.append(MAILBOX, message(n));
    const after = await uidValidity();
    assert.notEqual(after, before, 'Dovecot gave the recreated mailbox a new UIDVALIDITY');

    const restarted = h.restartInbound();
    try {
      await restarted.start();
      const routed = await eventually(async () => {
        const list = await feed();
        return list.length >= 4 ? list : undefined;
      }, 30_000);
      await eventually(async () => (restarted.status(serverId).lastUid[MAILBOX] === 4 ? true : undefined), 30_000);
      // A later message as a barrier: passes over a mailbox run one after another, so once it is
      // routed a second (wrongly) routed copy would be in the feed before it (no pause needed).
      await client.append(MAILBOX, message(4));
      const final = await eventually(async () => {
        const list = await feed();
        return list.length >= 5 ? list : undefined;
      }, 30_000);
      assert.deepEqual(
        final.map((m) => m.subject),
        ['message 0', 'message 1', 'message 2', 'message 3', 'message 4'],
      );
      assert.deepEqual(
        routed.map((m) => m.seq),
        [1, 2, 3, 4],
      );
      const duplicates = await h.store.query<{ n: string }>(
        `SELECT count(*) AS n FROM inbound_messages WHERE server_id = $1 AND status = 'duplicate' AND uid_validity = $2`,
        [serverId, String(after)],
      );
      assert.equal(Number(duplicates[0]?.n), 3, 'the rescanned copies are stored as duplicates');
      const alerts = await h.store.alerts.listByServer(serverId);
      assert.equal(alerts.length, 1);
      assert.equal(alerts[0]?.kind, 'uidvalidity-changed');
      assert.equal(alerts[0]?.details.mailbox, MAILBOX);
    } finally {
      await restarted.stop();
    }
  });
});
