import assert from 'node:assert/strict';
import { startFakeImap, type FakeImapServer } from '../../src/harness/fake-imap/index.js';
import { startSmtpHarness, type SmtpHarness } from '../../src/harness/smtp-harness.js';
import { openApiHarness, type ApiHarness } from '../support/api-harness.js';
import { loopbackImap } from '../support/fixtures.js';
import { eventually } from '../support/mail.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON answers in tests

/** Heartbeat through SMTP into a mailbox Mailroom watches: round trip measured, message removed. */
describe('heartbeat [pglite]', () => {
  let h: ApiHarness;
  let smtp: SmtpHarness;
  let imap: FakeImapServer;
  let relay: NodeJS.Timeout;

  beforeEach(async () => {
    h = await openApiHarness('pglite', undefined, { heartbeatIntervalMs: 400 });
    imap = await startFakeImap({ users: [{ user: 'hb@example.com', password: 'pw' }] });
    smtp = await startSmtpHarness({});
    // The relay delivers into the watched mailbox, as a real server would.
    let copied = 0;
    relay = setInterval(() => {
      for (const m of smtp.messages.slice(copied)) imap.append('hb@example.com', 'INBOX', m.raw);
      copied = smtp.messages.length;
    }, 20);
  });
  afterEach(async () => {
    clearInterval(relay);
    await h.close();
    await smtp.close();
    await imap.close();
  });

  it('measures the round trip, removes the heartbeat unrouted, and follows the relay down and up', async () => {
    const tenantId = (await h.call<Obj>('POST', '/api/v1/tenants', { name: 'HB' })).body.id;
    const server = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/servers`, {
      name: 'HB',
      imap: loopbackImap(imap.port, 'hb@example.com', 'pw'),
      smtp: { host: '127.0.0.1', port: smtp.port, auth: { mode: 'none' }, heartbeatAddress: 'hb@example.com' },
    });
    const serverId = server.body.id as string;
    const destination = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/destinations`, {
      name: 'HB',
      address: 'hb@example.com',
      serverId,
    });
    await h.inbound.start();
    await h.outbound.start();
    const status = async (): Promise<Obj> =>
      (await h.call<Obj>('GET', `/api/v1/tenants/${tenantId}/servers/${serverId}/status`)).body.outbound.heartbeat;
    const measured = await eventually(async () => {
      const s = await status();
      return s?.roundTripMs !== null && s?.health === 'ok' ? s : undefined;
    });
    assert.ok(measured.roundTripMs >= 0 && measured.roundTripMs < 5000, JSON.stringify(measured));
    const feed = await h.call<Obj>('GET', `/api/v1/tenants/${tenantId}/destinations/${destination.body.id}/messages`);
    assert.equal(feed.body.messages.length, 0, 'heartbeats never reach agents');
    await eventually(async () => (imap.messages('hb@example.com', 'INBOX').length === 0 ? true : undefined));

    await smtp.stop();
    await eventually(async () => ((await status()).health === 'down' ? true : undefined));
    await smtp.start();
    await eventually(async () => ((await status()).health === 'ok' ? true : undefined));
  });

  it('counts heartbeats against the hourly rate limit, and sends them from the account’s own address', async () => {
    const relay = await startSmtpHarness({ users: [{ user: 'sender@example.com', password: 'pw' }] });
    try {
      const tenantId = (await h.call<Obj>('POST', '/api/v1/tenants', { name: 'HB limit' })).body.id;
      const server = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/servers`, {
        name: 'HB limit',
        imap: loopbackImap(imap.port, 'hb@example.com', 'pw'),
        smtp: {
          host: '127.0.0.1',
          port: relay.port,
          auth: {
            mode: 'custom',
            method: 'password',
            user: 'sender@example.com',
            password: 'pw',
            confirmPassword: 'pw',
          },
          heartbeatAddress: 'hb@example.com',
          rateLimitPerHour: 2,
        },
      });
      assert.equal(server.status, 201, server.raw);
      const serverId = server.body.id as string;
      await h.outbound.start();
      const status = async (): Promise<Obj> =>
        (await h.call<Obj>('GET', `/api/v1/tenants/${tenantId}/servers/${serverId}/status`)).body.outbound.heartbeat;
      // A beat every 400 ms: the third finds no place in the hour.
      const deferred = await eventually(async () => {
        const s = await status();
        return /rate limit/.test(s?.lastResult ?? '') ? s : undefined;
      });
      assert.equal(deferred.health, 'ok', 'a heartbeat held back by the limit is not a failure');
      // Two more beats come and are held back too (each says so in the log): none is sent.
      const heldBack = (): number =>
        h.logLines.filter((l) => l.includes(serverId) && l.includes(JSON.stringify(deferred.lastResult))).length;
      const seen = heldBack();
      await eventually(async () => (heldBack() >= seen + 2 ? true : undefined));
      assert.equal(relay.messages.length, 2, 'never more heartbeats than the limit in the hour');
      for (const m of relay.messages) {
        assert.equal(m.envelope.from, 'sender@example.com', 'MAIL FROM is the account’s login');
        assert.match(m.raw.toString(), /^From: "?Mailroom heartbeat"? <sender@example\.com>\r$/m);
        assert.deepEqual(m.envelope.to, ['hb@example.com']);
      }
      const [logged] = await h.store.query<{ n: string }>(
        'SELECT count(*) AS n FROM smtp_send_log WHERE server_id = $1 AND recorded',
        [serverId],
      );
      assert.equal(Number(logged?.n), 2, 'both heartbeats are in the send log the limit reads');
    } finally {
      await relay.close();
    }
  });
});
