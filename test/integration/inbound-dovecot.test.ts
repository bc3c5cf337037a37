import assert from 'node:assert/strict';
import { ImapFlow } from 'imapflow';
import { openApiHarness, type ApiHarness } from '../support/api-harness.js';
import { isPostgresReachable } from '../support/database.js';
import { startDovecot, type DovecotInstance } from '../support/dovecot.js';
import { eventually, rawMail } from '../support/mail.js';
import { dovecotMissing, skipWithout } from '../support/requirements.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON answers in tests

const MAILBOXES = [
  { tenant: 'Alpha', user: 'a1@alpha.example', destination: 'support@alpha.example' },
  { tenant: 'Alpha', user: 'a2@alpha.example', destination: 'sales@alpha.example' },
  { tenant: 'Beta', user: 'b1@beta.example', destination: 'help@beta.example' },
];

/** Appends messages to a Dovecot mailbox with a pipelined imapflow client. */
async function appendAll(
  dovecot: DovecotInstance,
  user: string,
  messages: string[],
  flags: string[] = [],
): Promise<void> {
  const client = new ImapFlow({
    host: dovecot.host,
    port: dovecot.port,
    secure: false,
    auth: { user, pass: 'pw' },
    logger: false,
  });
  await client.connect();
  try {
    for (let i = 0; i < messages.length; i += 100) {
      await Promise.all(messages.slice(i, i + 100).map((m) => client.append('INBOX', m, flags)));
    }
  } finally {
    await client.logout();
  }
}

describe('inbound against Dovecot [postgres]', function () {
  this.timeout(180_000);
  let dovecot: DovecotInstance;
  let h: ApiHarness;
  const destinations = new Map<string, { tenantId: string; destinationId: string }>();

  before(async function () {
    skipWithout(this, dovecotMissing());
    const kind = (await isPostgresReachable()) ? 'postgres' : 'pglite';
    dovecot = await startDovecot({ users: MAILBOXES.map((m) => ({ user: m.user, password: 'pw' })) });
    h = await openApiHarness(kind);
    const tenants = new Map<string, string>();
    for (const m of MAILBOXES) {
      if (!tenants.has(m.tenant)) {
        tenants.set(m.tenant, (await h.call<Obj>('POST', '/api/v1/tenants', { name: m.tenant })).body.id);
      }
      const tenantId = tenants.get(m.tenant) as string;
      const server = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/servers`, {
        name: m.user,
        imap: {
          host: dovecot.host,
          port: dovecot.port,
          secure: false,
          user: m.user,
          auth: { method: 'password', password: 'pw' },
        },
        smtp: { host: '127.0.0.1', port: 2525, auth: { mode: 'none' } },
      });
      assert.equal(server.status, 201, server.raw);
      const destination = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/destinations`, {
        name: m.destination,
        address: m.destination,
        serverId: server.body.id,
      });
      destinations.set(m.user, { tenantId, destinationId: destination.body.id });
    }
  });

  after(async () => {
    await h?.close();
    await dovecot?.close();
  });

  async function delivered(user: string): Promise<Obj[]> {
    const { tenantId, destinationId } = destinations.get(user) as { tenantId: string; destinationId: string };
    const all: Obj[] = [];
    let after = 0;
    for (;;) {
      const page = await h.call<Obj>(
        'GET',
        `/api/v1/tenants/${tenantId}/destinations/${destinationId}/messages?after=${after}&limit=500`,
      );
      all.push(...page.body.messages);
      if (page.body.messages.length === 0) return all;
      after = page.body.next;
    }
  }

  it('routes 1,000 messages in three mailboxes of two tenants, each exactly once', async () => {
    const perMailbox = [334, 333, 333];
    await Promise.all(
      MAILBOXES.map((m, i) =>
        appendAll(
          dovecot,
          m.user,
          Array.from({ length: perMailbox[i] as number }, (_, n) =>
            rawMail({ to: m.destination, subject: `${m.user} #${n}`, messageId: `${m.user}-${n}@test` }),
          ),
          // The first mailbox's messages were all read in another client: they must still be ingested.
          i === 0 ? ['\\Seen'] : [],
        ),
      ),
    );
    const started = Date.now();
    await h.inbound.start();
    for (const [i, m] of MAILBOXES.entries()) {
      const got = await eventually(
        async () => {
          const list = await delivered(m.user);
          return list.length >= (perMailbox[i] as number) ? list : undefined;
        },
        120_000,
        250,
      );
      assert.equal(got.length, perMailbox[i], m.user);
      const subjects = new Set(got.map((x) => x.subject));
      assert.equal(subjects.size, got.length, 'no message twice');
      assert.deepEqual(
        got.map((x) => x.seq),
        Array.from({ length: got.length }, (_, n) => n + 1),
        'the cursor has no gaps',
      );
    }
    process.stdout.write(`      1,000 messages routed in ${Date.now() - started} ms\n`);
    const total = await h.store.query<{ n: string }>('SELECT count(*) AS n FROM inbound_deliveries');
    assert.equal(Number(total[0]?.n), 1000);
  });

  it('picks up, after a restart, the messages that arrived while it was stopped (read ones included)', async () => {
    await h.inbound.service.stop();
    const user = MAILBOXES[0]?.user as string;
    await appendAll(dovecot, user, [rawMail({ to: 'support@alpha.example', subject: 'while stopped 1' })]);
    await appendAll(dovecot, user, [rawMail({ to: 'support@alpha.example', subject: 'while stopped 2' })], ['\\Seen']);
    const restarted = h.restartInbound();
    try {
      await restarted.start();
      const got = await eventually(async () => {
        const list = await delivered(user);
        return list.length >= 336 ? list : undefined;
      }, 30_000);
      assert.deepEqual(
        got.slice(-2).map((x) => x.subject),
        ['while stopped 1', 'while stopped 2'],
      );
      assert.equal(got.length, 336);
    } finally {
      await restarted.stop();
    }
  });
});
