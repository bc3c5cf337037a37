import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAccounts } from '../../src/accounts/index.js';
import { CredentialService } from '../../src/auth/credentials.js';
import { startSmtpHarness, type SmtpHarness } from '../../src/harness/smtp-harness.js';
import { OutboundService } from '../../src/outbound/outbound-service.js';
import { RATE_WINDOW_MS } from '../../src/outbound/rate-limit.js';
import { SecretSealer } from '../../src/shared/sealed-secrets.js';
import type { Store } from '../../src/store/store.js';
import { quietLogger, resetStore, sharedStore, testBackends } from '../support/database.js';
import { FakeClock } from '../support/fake-clock.js';

/** 30 messages an hour, 100 queued, a fake clock, a restart in the middle. */
describe('hourly rate limit across a restart and across instances [pglite]', () => {
  let store: Store;
  let smtp: SmtpHarness;
  let spoolDir: string;

  before(async () => {
    store = await sharedStore('pglite');
    await resetStore(store);
    smtp = await startSmtpHarness({});
    spoolDir = await mkdtemp(join(tmpdir(), 'mailroom-rate-'));
  });
  after(async () => {
    await smtp.close();
    await rm(spoolDir, { recursive: true, force: true });
  });

  it('never sends more than 30 in any 60-minute window', async () => {
    const sealer = new SecretSealer(randomBytes(32));
    const accounts = createAccounts(store, sealer, quietLogger);
    const tenant = await accounts.tenants.create({ name: 'Rate' });
    const server = await accounts.servers.create(tenant.id, {
      name: 'Limited',
      enabled: false,
      imap: { host: '127.0.0.1', port: 1, user: 'rate@example.com', auth: { method: 'password', password: 'x' } },
      smtp: { host: '127.0.0.1', port: smtp.port, auth: { mode: 'none' }, rateLimitPerHour: 30 },
    });
    const destination = await accounts.destinations.create(tenant.id, {
      name: 'Rate',
      address: 'rate@example.com',
      serverId: server.id,
    });
    const clock = new FakeClock();
    const make = (): OutboundService =>
      new OutboundService({
        store,
        credentials: new CredentialService(sealer),
        logger: quietLogger,
        spoolDir,
        instanceId: 'rate-test',
        clock,
        options: { fsync: false, heartbeatIntervalMs: 0 },
      });
    let outbound = make();
    await outbound.start();
    for (let i = 0; i < 100; i++) {
      await outbound.accept(tenant.id, destination.id, { to: ['c@example.net'], subject: `#${i}`, text: 'x' });
    }
    const settle = async (count: number): Promise<void> => {
      await smtp.waitFor(count, 20_000);
      await new Promise((resolve) => setTimeout(resolve, 300)); // nothing more may follow
      assert.equal(smtp.messages.length, count);
    };
    await settle(30);
    assert.ok(outbound.status(server.id).queue?.rateLimitedUntil, 'the status says why mail waits');
    clock.advance(30 * 60_000);
    await settle(30);
    clock.advance(30 * 60_000 + 1000);
    await settle(60);

    // Restart: the new service reads the window from the send log, not from memory.
    await outbound.stop();
    outbound = make();
    await outbound.start();
    await settle(60);
    clock.advance(RATE_WINDOW_MS);
    await settle(90);
    clock.advance(RATE_WINDOW_MS);
    await settle(100);
    await outbound.stop();

    const sends = (await store.sendLog.since(server.id, new Date(0))).map((d) => d.getTime());
    assert.equal(sends.length, 100);
    for (const start of sends) {
      const inWindow = sends.filter((t) => t >= start && t < start + RATE_WINDOW_MS).length;
      assert.ok(inWindow <= 30, `${inWindow} sends in the hour from ${new Date(start).toISOString()}`);
    }
    const order = smtp.messages.map((m) => Number(m.raw.toString().match(/^Subject: #(\d+)/m)?.[1]));
    assert.deepEqual(
      order,
      Array.from({ length: 100 }, (_, i) => i),
    );
  });

  it('holds one hourly limit for an account whose mail two instances accepted', async () => {
    // Two engine instances: each spools what it accepted on its own disk and delivers it itself;
    // the limit is read from the send log both share, so together they stay within it.
    await resetStore(store);
    const before = smtp.messages.length;
    const sealer = new SecretSealer(randomBytes(32));
    const accounts = createAccounts(store, sealer, quietLogger);
    const tenant = await accounts.tenants.create({ name: 'Shared limit' });
    const server = await accounts.servers.create(tenant.id, {
      name: 'Limited',
      enabled: false,
      imap: { host: '127.0.0.1', port: 1, user: 'shared@example.com', auth: { method: 'password', password: 'x' } },
      smtp: { host: '127.0.0.1', port: smtp.port, auth: { mode: 'none' }, rateLimitPerHour: 5 },
    });
    const destination = await accounts.destinations.create(tenant.id, {
      name: 'Shared',
      address: 'shared@example.com',
      serverId: server.id,
    });
    const clock = new FakeClock();
    const instance = (name: string): OutboundService =>
      new OutboundService({
        store,
        credentials: new CredentialService(sealer),
        logger: quietLogger,
        spoolDir: join(spoolDir, name),
        instanceId: name,
        clock,
        options: { fsync: false, heartbeatIntervalMs: 0 },
      });
    const a = instance('instance-a');
    const b = instance('instance-b');
    await a.start();
    await b.start();
    try {
      for (let i = 0; i < 4; i++) {
        await a.accept(tenant.id, destination.id, { to: ['c@example.net'], subject: `a${i}`, text: 'x' });
      }
      await smtp.waitFor(before + 4, 20_000);
      for (let i = 0; i < 4; i++) {
        await b.accept(tenant.id, destination.id, { to: ['c@example.net'], subject: `b${i}`, text: 'x' });
      }
      await smtp.waitFor(before + 5, 20_000);
      await new Promise((resolve) => setTimeout(resolve, 500)); // nothing more may follow
      assert.equal(smtp.messages.length - before, 5, 'five an hour, both instances together');
      assert.ok(b.status(server.id).queue?.rateLimitedUntil, 'the second instance says why its mail waits');
      clock.advance(RATE_WINDOW_MS + 1000);
      await smtp.waitFor(before + 8, 20_000);
      const subjects = smtp.messages.slice(before).map((m) => m.raw.toString().match(/^Subject: (\S+)/m)?.[1]);
      assert.deepEqual(subjects, ['a0', 'a1', 'a2', 'a3', 'b0', 'b1', 'b2', 'b3']);
    } finally {
      await a.stop();
      await b.stop();
    }
  });
});

for (const kind of await testBackends()) {
  describe(`hourly rate limit with two instances delivering at the same moment [${kind}]`, () => {
    let store: Store;
    let smtp: SmtpHarness;
    let spoolDir: string;

    before(async () => {
      store = await sharedStore(kind);
      await resetStore(store);
      smtp = await startSmtpHarness({});
      spoolDir = await mkdtemp(join(tmpdir(), 'mailroom-rate-race-'));
    });
    after(async () => {
      await smtp.close();
      await rm(spoolDir, { recursive: true, force: true });
    });

    it('never lets both take the last place of the hour', async () => {
      // Both instances wait for the relay with their messages queued; when it comes back, both
      // drain at once. Reading the log and sending (without a place taken under a lock) let each
      // see only the other's recorded sends and overshoot the limit.
      const sealer = new SecretSealer(randomBytes(32));
      const accounts = createAccounts(store, sealer, quietLogger);
      const tenant = await accounts.tenants.create({ name: 'Race' });
      const server = await accounts.servers.create(tenant.id, {
        name: 'Limited',
        enabled: false,
        imap: { host: '127.0.0.1', port: 1, user: 'race@example.com', auth: { method: 'password', password: 'x' } },
        smtp: { host: '127.0.0.1', port: smtp.port, auth: { mode: 'none' }, rateLimitPerHour: 4 },
      });
      const destination = await accounts.destinations.create(tenant.id, {
        name: 'Race',
        address: 'race@example.com',
        serverId: server.id,
      });
      const clock = new FakeClock();
      const instance = (name: string): OutboundService =>
        new OutboundService({
          store,
          credentials: new CredentialService(sealer),
          logger: quietLogger,
          spoolDir: join(spoolDir, name),
          instanceId: name,
          clock,
          options: { fsync: false, heartbeatIntervalMs: 0, probeIntervalMs: 50 },
        });
      const engines = [instance('race-a'), instance('race-b')];
      await smtp.stop();
      for (const engine of engines) await engine.start();
      try {
        for (const [n, engine] of engines.entries()) {
          for (let i = 0; i < 6; i++) {
            await engine.accept(tenant.id, destination.id, { to: ['c@example.net'], subject: `${n}-${i}`, text: 'x' });
          }
        }
        await smtp.start();
        clock.advance(100); // both probes are due: the relay answers, both queues drain
        await smtp.waitFor(4, 20_000);
        await new Promise((resolve) => setTimeout(resolve, 1_000)); // nothing more may follow
        assert.equal(smtp.messages.length, 4, 'four an hour, both instances together');
        const sends = await store.sendLog.since(server.id, new Date(0));
        assert.equal(sends.length, 4);
        const places = await store.query<{ n: string }>('SELECT count(*) AS n FROM smtp_send_log WHERE NOT recorded');
        assert.equal(Number(places[0]?.n), 0, 'every place taken was replaced by its record');

        clock.advance(RATE_WINDOW_MS + 1000);
        await smtp.waitFor(8, 20_000);
        await new Promise((resolve) => setTimeout(resolve, 1_000));
        assert.equal(smtp.messages.length, 8, 'four more in the next hour');
      } finally {
        for (const engine of engines) await engine.stop();
      }
    });
  });
}
