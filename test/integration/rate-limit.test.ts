import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { createAccounts } from '../../src/accounts/index.js';
import { CredentialService } from '../../src/auth/credentials.js';
import type { SmtpHarness } from '../../src/harness/smtp-harness.js';
import type { OutboundOptions } from '../../src/outbound/options.js';
import { OutboundService } from '../../src/outbound/outbound-service.js';
import { RATE_WINDOW_MS } from '../../src/outbound/rate-limit.js';
import { SecretSealer } from '../../src/shared/sealed-secrets.js';
import type { Store } from '../../src/store/store.js';
import { quietLogger, resetStore, testBackends } from '../support/database.js';
import { closeOutboundFixture, createSendingAccount, openOutboundFixture } from '../support/outbound-fixture.js';
import { FakeClock } from '../support/fake-clock.js';
import { eventually } from '../support/mail.js';

/** A tenant with one limited account (relay: the harness) and its destination, and engines over them. */
async function limitedAccount(store: Store, smtp: SmtpHarness, name: string, limit: number) {
  const sealer = new SecretSealer(randomBytes(32));
  const accounts = createAccounts(store, sealer, quietLogger);
  const ids = await createSendingAccount(accounts, {
    tenant: name,
    address: `${name.toLowerCase().replace(/\W+/g, '-')}@example.com`,
    relayPort: smtp.port,
    smtp: { rateLimitPerHour: limit },
  });
  const clock = new FakeClock();
  /** An engine instance with its own spool under `spoolDir`. */
  const engine = (spoolDir: string, instanceId: string, options: Partial<OutboundOptions> = {}): OutboundService =>
    new OutboundService({
      store,
      credentials: new CredentialService(sealer),
      logger: quietLogger,
      spoolDir,
      instanceId,
      clock,
      options: { fsync: false, heartbeatIntervalMs: 0, ...options },
    });
  /** Accepts a message for the destination through `through`. */
  const send = (through: OutboundService, subject: string) =>
    through.accept(ids.tenantId, ids.destinationId, { to: ['c@example.net'], subject, text: 'x' });
  return { ...ids, clock, engine, send };
}

/**
 * Resolves once the account's queue in each engine has stopped by itself: waiting for a place
 * under the limit until a time the fake clock has not reached (it moves only when the test says),
 * or, with `mayBeEmpty`, empty (not for a queue just started: it is empty until it has listed its
 * spool). Then nothing more is sent, and a count taken now is final: no waiting on the wall clock.
 */
async function atRest(
  engines: OutboundService[],
  serverId: string,
  clock: FakeClock,
  mayBeEmpty: boolean,
): Promise<void> {
  await eventually(async () =>
    engines.every((engine) => {
      const queue = engine.status(serverId).queue;
      if (!queue) return false;
      const limitedUntil = queue.rateLimitedUntil === null ? 0 : Date.parse(queue.rateLimitedUntil);
      return (mayBeEmpty && queue.depth === 0) || limitedUntil > clock.now();
    })
      ? true
      : undefined,
  );
}

/** 30 messages an hour, 100 queued, a fake clock, a restart in the middle. */
describe('hourly rate limit across a restart and across instances [pglite]', () => {
  let store: Store;
  let smtp: SmtpHarness;
  let spoolDir: string;

  before(async () => {
    ({ store, smtp, spoolDir } = await openOutboundFixture('pglite', 'rate'));
  });
  after(() => closeOutboundFixture({ smtp, spoolDir }));

  it('never sends more than 30 in any 60-minute window', async () => {
    const { serverId, tenantId, destinationId, clock, engine, send } = await limitedAccount(store, smtp, 'Rate', 30);
    const make = (): OutboundService => engine(spoolDir, 'rate-test');
    let outbound = make();
    await outbound.start();
    const accepted: string[] = [];
    for (let i = 0; i < 100; i++) accepted.push((await send(outbound, `#${i}`)).id);
    const settle = async (count: number): Promise<void> => {
      await smtp.waitFor(count, 20_000);
      await atRest([outbound], serverId, clock, count === accepted.length);
      assert.equal(smtp.messages.length, count);
    };
    await settle(30);
    const limitedUntil = outbound.status(serverId).queue?.rateLimitedUntil;
    assert.ok(limitedUntil, 'the status says why mail waits');
    // And so does each message held back: why, and not before when (no `nextAttemptAt` of its own).
    const held = await outbound.get(tenantId, destinationId, accepted[30] as string);
    assert.equal(held.status, 'queued');
    assert.equal(held.nextAttemptAt, null);
    assert.equal(held.waitingFor, 'rate-limit');
    assert.equal(held.waitingUntil, limitedUntil);
    assert.equal(new Date(limitedUntil).getTime(), clock.now() + RATE_WINDOW_MS, 'when the first send leaves the hour');
    const gone = await outbound.get(tenantId, destinationId, accepted[0] as string);
    assert.equal(gone.waitingFor, null);
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

    const sends = (await store.sendLog.since(serverId, new Date(0))).map((d) => d.getTime());
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
    const { serverId, clock, engine, send } = await limitedAccount(store, smtp, 'Shared limit', 5);
    const instance = (name: string): OutboundService => engine(join(spoolDir, name), name);
    const a = instance('instance-a');
    const b = instance('instance-b');
    await a.start();
    await b.start();
    try {
      for (let i = 0; i < 4; i++) await send(a, `a${i}`);
      await smtp.waitFor(before + 4, 20_000);
      for (let i = 0; i < 4; i++) await send(b, `b${i}`);
      await smtp.waitFor(before + 5, 20_000);
      await atRest([a, b], serverId, clock, true); // a sent all of its four
      assert.equal(smtp.messages.length - before, 5, 'five an hour, both instances together');
      assert.ok(b.status(serverId).queue?.rateLimitedUntil, 'the second instance says why its mail waits');
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
      ({ store, smtp, spoolDir } = await openOutboundFixture(kind, 'rate-race'));
    });
    after(() => closeOutboundFixture({ smtp, spoolDir }));

    it('never lets both take the last place of the hour', async () => {
      // Both instances wait for the relay with their messages queued; when it comes back, both
      // drain at once. Reading the log and sending (without a place taken under a lock) let each
      // see only the other's recorded sends and overshoot the limit.
      const { serverId, clock, engine, send } = await limitedAccount(store, smtp, 'Race', 4);
      const instance = (name: string): OutboundService => engine(join(spoolDir, name), name, { probeIntervalMs: 50 });
      const engines = [instance('race-a'), instance('race-b')];
      await smtp.stop();
      for (const engine of engines) await engine.start();
      try {
        for (const [n, instanceN] of engines.entries()) {
          for (let i = 0; i < 6; i++) await send(instanceN, `${n}-${i}`);
        }
        // Each engine has tried once and found the relay refusing connections: nothing was sent,
        // so the places taken for those attempts were given back.
        await eventually(async () =>
          engines.every((e) => e.status(serverId).queue?.state === 'paused') ? true : undefined,
        );
        const refused = await store.query<{ n: string }>('SELECT count(*) AS n FROM smtp_send_log');
        assert.equal(Number(refused[0]?.n), 0, 'a refused connection takes no place');
        await smtp.start();
        clock.advance(100); // both probes are due: the relay answers, both queues drain
        await smtp.waitFor(4, 20_000);
        await atRest(engines, serverId, clock, true);
        assert.equal(smtp.messages.length, 4, 'four an hour, both instances together');
        // Sends are recorded in groups a moment after the relay's answer: waited for, not slept on.
        const sends = await eventually(async () => {
          const recorded = await store.sendLog.since(serverId, new Date(0));
          return recorded.length >= 4 ? recorded : undefined;
        });
        assert.equal(sends.length, 4);
        const places = await store.query<{ n: string }>('SELECT count(*) AS n FROM smtp_send_log WHERE NOT recorded');
        assert.equal(Number(places[0]?.n), 0, 'every place taken was replaced by its record');

        clock.advance(RATE_WINDOW_MS + 1000);
        await smtp.waitFor(8, 20_000);
        await atRest(engines, serverId, clock, true);
        assert.equal(smtp.messages.length, 8, 'four more in the next hour');
      } finally {
        for (const engine of engines) await engine.stop();
      }
    });

    it('counts an attempt that may have delivered (connection lost after the dot) as a send', async () => {
      await resetStore(store);
      smtp.messages.length = 0;
      const { tenantId, destinationId, clock, engine: make, send } = await limitedAccount(store, smtp, 'Lost', 10);
      const engine = make(join(spoolDir, 'lost'), 'lost', { probeIntervalMs: 50 });
      smtp.faults.dropAt('afterData', { times: 1 });
      await engine.start();
      try {
        const accepted = await send(engine, 'x');
        const lines = () =>
          store.query<{ recorded: boolean }>('SELECT recorded FROM smtp_send_log WHERE outbound_id = $1', [
            accepted.id,
          ]);
        // The first attempt lost its connection after the final dot: the server may have it.
        await eventually(async () => ((await lines()).length === 1 && (await lines())[0]?.recorded ? true : undefined));
        assert.notEqual((await engine.get(tenantId, destinationId, accepted.id)).status, 'sent');
        clock.advance(10 * 60_000); // its retry is due (and the relay is probed again)
        const both = await eventually(async () => {
          const now = await lines();
          return now.length === 2 && now.every((l) => l.recorded) ? now : undefined;
        });
        assert.equal(both.length, 2, 'the lost attempt and the delivery both count');
        assert.equal((await engine.get(tenantId, destinationId, accepted.id)).status, 'sent');
      } finally {
        await engine.stop();
      }
    });
  });
}
