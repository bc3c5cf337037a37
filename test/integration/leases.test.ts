import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createAccounts } from '../../src/accounts/index.js';
import { LeaseKeeper } from '../../src/cluster/lease-keeper.js';
import { SecretSealer } from '../../src/shared/sealed-secrets.js';
import type { Store } from '../../src/store/store.js';
import { forEachBackend } from '../support/api-harness.js';
import type { Logger } from '../../src/shared/logger.js';
import { quietLogger, resetStore, sharedStore } from '../support/database.js';
import { FakeClock } from '../support/fake-clock.js';
import { capturingLogger } from '../support/log-capture.js';
import { eventually } from '../support/mail.js';

const SERVERS = 12;
const TTL_MS = 1_500;

/**
 * Leases between instances, with the renewals driven by hand (no timers): fair shares, no
 * server ever held twice, takeover after a crash (leases that stop being renewed), hand-over
 * when an instance joins, and give-back on a graceful stop.
 */
forEachBackend('server leases between instances', (kind) => {
  let store: Store;
  let serverIds: string[];

  before(async () => {
    store = await sharedStore(kind);
  });

  beforeEach(async () => {
    await resetStore(store);
    serverIds = [];
    await addServers(SERVERS);
  });

  /** Adds `count` servers, five per tenant at most (new tenants), to `serverIds`. */
  async function addServers(count: number): Promise<void> {
    const accounts = createAccounts(store, new SecretSealer(randomBytes(32)), quietLogger);
    const end = serverIds.length + count;
    for (let start = serverIds.length; start < end; start += 5) {
      const tenant = await accounts.tenants.create({ name: `Lease tenant ${start / 5}` });
      for (let i = start; i < Math.min(end, start + 5); i++) {
        const server = await accounts.servers.create(tenant.id, {
          name: `Box ${i}`,
          imap: {
            host: '127.0.0.1',
            port: 1,
            secure: false,
            user: `u${i}`,
            auth: { method: 'password', password: 'pw' },
          },
          smtp: { host: '127.0.0.1', port: 2, auth: { mode: 'none' } },
        });
        serverIds.push(server.id);
      }
    }
  }

  /** A keeper whose ownership changes are recorded; renewals only when the test calls tick(). */
  function keeper(name: string, logger: Logger = quietLogger): { keeper: LeaseKeeper; changes: number } {
    const entry = { keeper: undefined as unknown as LeaseKeeper, changes: 0 };
    entry.keeper = new LeaseKeeper({
      store,
      logger,
      instanceId: name,
      options: { ttlMs: TTL_MS, renewIntervalMs: 60_000, rebalanceStep: 10 },
      onChange: async () => {
        entry.changes++;
      },
    });
    return entry;
  }

  /** Every server is held by at most one keeper, per the database and per the keepers' own view. */
  async function assertExclusive(keepers: LeaseKeeper[]): Promise<void> {
    const seen = new Map<string, string>();
    for (const k of keepers) {
      for (const id of k.ownedServers) {
        assert.ok(!seen.has(id), `server ${id} held by ${seen.get(id)} and ${k.owner}`);
        seen.set(id, k.owner);
      }
    }
    const holders = await store.leases.holders();
    for (const h of holders) {
      const local = seen.get(h.serverId);
      if (local !== undefined) assert.equal(local, h.owner, `server ${h.serverId}: database and keeper disagree`);
    }
  }

  const sizes = (keepers: LeaseKeeper[]): number[] => keepers.map((k) => k.ownedServers.size);

  it('shares the servers fairly, hands over when one joins, takes over when one dies', async () => {
    const a = keeper('a').keeper;
    const b = keeper('b').keeper;
    const c = keeper('c').keeper;
    await a.tick(); // alone: takes everything
    assert.equal(a.ownedServers.size, SERVERS);
    await b.tick();
    await c.tick();
    await assertExclusive([a, b, c]);
    assert.deepEqual(sizes([b, c]), [0, 0], 'the others find every server held');
    await a.tick(); // sees three instances: hands over down to its share
    assert.equal(a.ownedServers.size, SERVERS / 3);
    await b.tick();
    await c.tick();
    assert.deepEqual(sizes([a, b, c]), [4, 4, 4]);
    await assertExclusive([a, b, c]);
    assert.deepEqual(new Set([...a.ownedServers, ...b.ownedServers, ...c.ownedServers]), new Set(serverIds));

    // c dies: it stops renewing. Until its leases expire nobody takes its servers.
    await a.tick();
    await b.tick();
    assert.deepEqual(sizes([a, b]), [4, 4]);
    // The survivors keep renewing (as their timers would) while c's leases run out.
    const until = Date.now() + TTL_MS + 200;
    while (Date.now() < until) {
      await a.tick();
      await b.tick();
      await new Promise((r) => setTimeout(r, TTL_MS / 5));
    }
    await a.tick();
    await b.tick();
    assert.deepEqual(sizes([a, b]), [6, 6], 'the survivors split the dead instance’s servers');
    await assertExclusive([a, b]);

    // c comes back (a new process): the others hand over until the load is even again.
    const c2 = keeper('c').keeper;
    await c2.tick();
    assert.equal(c2.ownedServers.size, 0);
    await a.tick();
    await b.tick();
    await c2.tick();
    assert.deepEqual(sizes([a, b, c2]), [4, 4, 4]);
    await assertExclusive([a, b, c2]);

    // A graceful stop gives the leases back at once: no waiting for expiry.
    await c2.stop();
    await a.tick();
    await b.tick();
    assert.deepEqual(sizes([a, b]), [6, 6]);
    await a.stop();
    await b.stop();
    assert.deepEqual(await store.leases.holders(), []);
  });

  it('hands over everything above its share in one renewal by default, however many servers', async () => {
    await addServers(3 * SERVERS); // 48: 24 to hand over, more than any small fixed step
    const make = (name: string): LeaseKeeper =>
      new LeaseKeeper({
        store,
        logger: quietLogger,
        instanceId: name,
        options: { ttlMs: 60_000, renewIntervalMs: 60_000 },
        onChange: async () => undefined,
      });
    const a = make('a');
    const b = make('b');
    await a.tick();
    await b.tick();
    assert.deepEqual(sizes([a, b]), [48, 0]);
    await a.tick(); // b is short of its share: a keeps its share only
    await b.tick();
    assert.deepEqual(sizes([a, b]), [24, 24]);
    await assertExclusive([a, b]);
    await a.stop();
    await b.stop();
  });

  it('takes back at once the servers of a previous process of the same instance proven gone, and only then', async () => {
    const place = 'host-a/boot-1/pid:[4026531836]';
    const incarnation = (p: string | null, gone: boolean): LeaseKeeper =>
      new LeaseKeeper({
        store,
        logger: quietLogger,
        instanceId: 'same',
        options: { ttlMs: 60_000, renewIntervalMs: 60_000, rebalanceStep: 10 },
        onChange: async () => undefined,
        place: p,
        isGone: () => gone,
      });
    // The first process takes every server, then is killed (it never renews nor gives back).
    const killed = incarnation(place, true);
    await killed.tick();
    assert.equal(killed.ownedServers.size, SERVERS);

    // Its pid is alive (maybe reused by something else): nothing is proven, its leases stand.
    const whilePidAlive = incarnation(place, false);
    await whilePidAlive.start();
    assert.equal(whilePidAlive.ownedServers.size, 0, 'a live pid proves nothing');
    await whilePidAlive.stop();
    // Announced from another host, boot or container: its pid means nothing here.
    const elsewhere = incarnation('host-b/boot-1/pid:[4026531836]', true);
    await elsewhere.start();
    assert.equal(elsewhere.ownedServers.size, 0, 'another place proves nothing');
    await elsewhere.stop();
    const unknownPlace = incarnation(null, true);
    await unknownPlace.start();
    assert.equal(unknownPlace.ownedServers.size, 0, 'without a place nothing is inferred');
    await unknownPlace.stop();

    // Same place, pid gone: the new process takes the servers at its start, not a ttl later.
    const restarted = incarnation(place, true);
    await restarted.start();
    assert.equal(restarted.ownedServers.size, SERVERS, 'taken back at once');
    await killed.tick(); // were it alive after all, it would learn that it lost them
    assert.equal(killed.ownedServers.size, 0);
    await assertExclusive([killed, restarted]);
    await restarted.stop();
  });

  it('never gives one server to two instances that renew at the same moment', async () => {
    const keepers = Array.from({ length: 5 }, (_, i) => keeper(`racer-${i}`).keeper);
    for (let round = 0; round < 6; round++) {
      await Promise.all(keepers.map((k) => k.tick()));
      await assertExclusive(keepers);
    }
    const total = keepers.reduce((n, k) => n + k.ownedServers.size, 0);
    assert.equal(total, SERVERS, 'every server is held once the shares settled');
    assert.ok(Math.max(...sizes(keepers)) <= Math.ceil(SERVERS / 5), `shares: ${sizes(keepers).join(', ')}`);
    await Promise.all(keepers.map((k) => k.stop()));
  });

  it('stops watching when a renewal hangs for nearly a ttl, and takes its servers back once it answers', async () => {
    const owned: Array<ReadonlySet<string>> = [];
    const k = new LeaseKeeper({
      store,
      logger: quietLogger,
      instanceId: 'hanging',
      options: { ttlMs: TTL_MS, renewIntervalMs: 300 },
      onChange: async (set) => {
        owned.push(new Set(set));
      },
    });
    await k.start();
    assert.equal(k.ownedServers.size, SERVERS);
    // The database stops answering the renewal (as a dropped network would leave it).
    const announce = store.leases.announce.bind(store.leases);
    let answer: (() => void) | undefined;
    store.leases.announce = async (...args) => {
      await new Promise<void>((resolve) => (answer = resolve));
      return announce(...args);
    };
    try {
      const started = Date.now();
      while (k.ownedServers.size > 0 && Date.now() - started < 5_000) await new Promise((r) => setTimeout(r, 50));
      assert.equal(k.ownedServers.size, 0, 'the watchers stopped while the renewal hung');
      // Due at ttl − one renewal interval after the last renewal (timers may run late on a busy machine).
      assert.ok(Date.now() - started < 2 * TTL_MS, `gave up after ${Date.now() - started} ms`);
    } finally {
      store.leases.announce = announce;
      answer?.();
    }
    // The renewal answers after all: nobody took the servers, so they are this instance's again.
    const started = Date.now();
    while (k.ownedServers.size < SERVERS && Date.now() - started < 5_000) await new Promise((r) => setTimeout(r, 50));
    assert.equal(k.ownedServers.size, SERVERS);
    await k.stop();
  });

  it('stays announced while a renewal waits on its watchers for longer than a ttl', async () => {
    let unblock: (() => void) | undefined;
    let block = false;
    const slow = new LeaseKeeper({
      store,
      logger: quietLogger,
      instanceId: 'slow',
      options: { ttlMs: TTL_MS, renewIntervalMs: 300 },
      onChange: async () => {
        if (block) await new Promise<void>((resolve) => (unblock = resolve));
      },
    });
    await slow.start();
    assert.equal(slow.ownedServers.size, SERVERS);
    const b = keeper('b').keeper;
    block = true;
    await b.tick(); // b is short of its share: slow's next renewal hands 6 over, stopping their watchers slowly
    try {
      const started = Date.now();
      while (unblock === undefined && Date.now() - started < 5_000) await new Promise((r) => setTimeout(r, 50));
      assert.ok(unblock, 'the hand-over began');
      // Stopping the watchers takes two ttls; b renews meanwhile, as its timer would.
      while (Date.now() - started < 2 * TTL_MS) {
        await b.tick();
        assert.equal(b.ownedServers.size, 0, 'slow is alive: none of its servers is taken');
        await new Promise((r) => setTimeout(r, 200));
      }
    } finally {
      block = false;
      unblock?.();
    }
    const started = Date.now();
    while (b.ownedServers.size < SERVERS / 2 && Date.now() - started < 5_000) {
      await b.tick();
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.deepEqual(sizes([slow, b]), [6, 6]);
    await assertExclusive([slow, b]);
    await slow.stop();
    await b.stop();
  });

  it('renews on its injected clock: a fake clock decides when, not the wall clock', async () => {
    const clock = new FakeClock();
    const renewIntervalMs = 60_000; // a real timer would not fire during the test
    const k = new LeaseKeeper({
      store,
      logger: quietLogger,
      instanceId: 'clocked',
      options: { ttlMs: 4 * renewIntervalMs, renewIntervalMs },
      onChange: async () => undefined,
      clock,
    });
    let renewals = 0;
    const announce = store.leases.announce.bind(store.leases);
    store.leases.announce = async (...args) => {
      renewals++;
      return announce(...args);
    };
    /** The renewal and the lapse watchdog are both waiting on the clock (a renewal in progress re-arms when done). */
    const armed = (): Promise<unknown> => eventually(async () => (clock.pendingTimers === 2 ? true : undefined));
    try {
      await k.start();
      assert.equal(renewals, 1, 'the first renewal at the start');
      await armed();
      clock.advance(renewIntervalMs - 1);
      assert.equal(renewals, 1, 'not before the interval is over');
      clock.advance(1);
      assert.equal(renewals, 2, 'renewed when the interval is over');
      await armed();
      clock.advance(renewIntervalMs);
      assert.equal(renewals, 3);
      await armed();
    } finally {
      store.leases.announce = announce;
      await k.stop();
    }
    assert.equal(clock.pendingTimers, 0, 'a stopped keeper leaves no timer behind');
  });

  it('applies a change of the servers again at the next renewal when applying it failed', async () => {
    const applied: Array<ReadonlySet<string>> = [];
    let failing = true;
    const k = new LeaseKeeper({
      store,
      logger: quietLogger,
      instanceId: 'flaky',
      options: { ttlMs: TTL_MS, renewIntervalMs: 300 }, // not started: renewals only by tick()
      onChange: async (set) => {
        if (failing) throw new Error('the watchers could not be started');
        applied.push(new Set(set));
      },
    });
    await k.tick(); // takes every server, but starting their watchers fails
    assert.equal(k.ownedServers.size, SERVERS);
    assert.deepEqual(applied, []);
    failing = false;
    await k.tick(); // nothing changed in the database: the change is applied now
    assert.deepEqual(applied, [new Set(serverIds)]);
    await k.tick();
    assert.equal(applied.length, 1, 'an applied change is not applied again');
    await k.stop();
  });

  it('keeps trying to stop the watchers of lapsing leases while the database is down', async () => {
    let watching = new Set<string>();
    let down = false;
    const k = new LeaseKeeper({
      store,
      logger: quietLogger,
      instanceId: 'cut-off',
      options: { ttlMs: TTL_MS, renewIntervalMs: 300 },
      // Like the engine's reconcile: it reads the database first.
      onChange: async (set) => {
        if (down) throw new Error('connection refused');
        watching = new Set(set);
      },
    });
    await k.start();
    assert.equal(watching.size, SERVERS);
    const announce = store.leases.announce.bind(store.leases);
    store.leases.announce = async (...args) => {
      if (down) throw new Error('connection refused');
      return announce(...args);
    };
    try {
      down = true;
      const started = Date.now();
      while (k.ownedServers.size > 0 && Date.now() - started < 5_000) await new Promise((r) => setTimeout(r, 50));
      assert.equal(k.ownedServers.size, 0, 'the leases were given up');
      assert.equal(watching.size, SERVERS, 'stopping the watchers failed while the database was down');
      // The database answers again, after another instance took the servers meanwhile.
      await store.query(
        `INSERT INTO engine_instances (owner, instance_id, expires_at) VALUES ('someone-else', 'x', now() + interval '1 minute')`,
      );
      await store.query(`UPDATE server_leases SET owner = 'someone-else'`);
      down = false;
      while (watching.size > 0 && Date.now() - started < 10_000) await new Promise((r) => setTimeout(r, 50));
      assert.equal(watching.size, 0, 'the watchers of the servers given up stopped');
    } finally {
      store.leases.announce = announce;
      await k.stop();
    }
  });

  it('lets go of a disabled server and tells its owner when a lease was taken', async () => {
    const { logger, lines } = capturingLogger('info');
    const a = keeper('a', logger);
    await a.keeper.tick();
    assert.equal(a.keeper.ownedServers.size, SERVERS);
    const [first] = serverIds as [string];
    await store.query('UPDATE email_servers SET enabled = false WHERE id = $1', [first]);
    await a.keeper.tick();
    assert.equal(a.keeper.ownedServers.has(first), false);
    assert.equal(a.keeper.ownedServers.size, SERVERS - 1);
    // One instance alone: nobody took the lease, and the log does not say so.
    assert.ok(!lines.some((l) => l.includes('leases lost')), lines.join('\n'));
    assert.ok(lines.some((l) => l.includes('disabled or deleted: no longer watched') && l.includes(first)));

    // Another instance steals a lease (as after a long pause of this one): the owner notices.
    const [second] = serverIds.slice(1) as [string];
    await store.query(
      `INSERT INTO engine_instances (owner, instance_id, expires_at) VALUES ('someone-else', 'x', now() + interval '1 minute')`,
    );
    await store.query(`UPDATE server_leases SET owner = 'someone-else' WHERE server_id = $1`, [second]);
    const before = a.changes;
    await a.keeper.tick();
    assert.equal(a.keeper.owns(second), false);
    assert.ok(lines.some((l) => l.includes('leases lost to another instance') && l.includes(second)));
    assert.ok(a.changes > before, 'the owner was told of the change');
    await a.keeper.stop();
  });
});
