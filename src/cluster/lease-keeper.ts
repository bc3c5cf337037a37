import { randomUUID } from 'node:crypto';
import { systemClock, type Clock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import { leaseChanges } from '../shared/metrics.js';
import { processGone, processPlace } from '../shared/process-place.js';
import type { Store } from '../store/store.js';

/** The instances sharing the database and the lease of each e-mail server. */
export interface ClusterView {
  self: { instanceId: string; owner: string };
  instances: Array<{ owner: string; instanceId: string; startedAt: string; expiresAt: string; servers: number }>;
  leases: Array<{ serverId: string; owner: string; instanceId: string; expiresAt: string }>;
}

export interface LeaseOptions {
  /** [20000] a lease not renewed for this long is free for another instance to take, ms. */
  ttlMs: number;
  /** [ttl / 4] how often leases are renewed and the share is checked, ms. */
  renewIntervalMs: number;
  /**
   * [Infinity] at most this many servers handed over per renewal when rebalancing. By default all
   * above the share go at once, so shares are even two renewals after a join at any scale: 10 per
   * renewal would have given a third instance joining two that shared 10,000 servers its 3,334
   * only after about 170 renewals (14 minutes). The joining instance's connect gate (32 at once)
   * paces the connections either way.
   */
  rebalanceStep: number;
}

export const DEFAULT_LEASE_OPTIONS: LeaseOptions = {
  ttlMs: 20_000,
  renewIntervalMs: 5_000,
  rebalanceStep: Number.POSITIVE_INFINITY,
};

export interface LeaseKeeperDeps {
  store: Store;
  logger: Logger;
  /** The configured instance name (`MAILROOM_INSTANCE_ID`); several processes may share it. */
  instanceId: string;
  /**
   * Called (and awaited) after the set of owned servers changed. Before a lease is given up this
   * has run, so the watcher of that server is stopped before another instance may start one.
   */
  onChange: (owned: ReadonlySet<string>) => Promise<void>;
  options?: Partial<LeaseOptions>;
  /**
   * [processPlace()] where this process's pid is meaningful (host, kernel boot, PID namespace);
   * null: a predecessor's leases are never taken back early, they lapse after the ttl.
   */
  place?: string | null;
  /** [processGone] whether no process holds this pid here (tests hand in their own). */
  isGone?: (pid: number) => boolean;
  /** [the system clock] the timers of renewals and of the lapse watchdog (a test's fake clock). */
  clock?: Clock;
}

/**
 * Shares the e-mail servers among the engine instances on one database. Each instance holds a
 * lease per server it watches (valid while the instance renews its own row, every few seconds,
 * times from the database), takes
 * free or expired leases up to its fair share (enabled servers ÷ live instances, rounded up),
 * and hands a few over per renewal when another instance has fewer than its share. An instance
 * that dies stops renewing; its leases expire after `ttlMs` and the others take them. An
 * instance that cannot reach the database for nearly a ttl gives up its servers on its own, so
 * two watchers of one server overlap at most briefly (and the inbound checkpoint makes that
 * harmless: a message is stored and routed once whoever fetches it).
 */
export class LeaseKeeper {
  /** Unique per process: a restarted instance never mistakes its predecessor's leases for its own. */
  readonly owner: string;
  readonly options: LeaseOptions;
  /** Where this process's pid is meaningful, or null (see LeaseKeeperDeps.place). */
  private readonly place: string | null;
  private owned = new Set<string>();
  /** `owned` changed but `onChange` has not applied it yet (it failed): tried again every tick. */
  private unapplied = false;
  private lastRenewedAt = 0;
  private ticks = 0;
  private timer: unknown;
  private watchdog: unknown;
  private readonly clock: Clock;
  private ticking: Promise<void> | undefined;
  /** `onChange` calls in progress (see keepAliveOrGiveUp). */
  private applying = 0;
  private stopped = false;

  constructor(private readonly deps: LeaseKeeperDeps) {
    const ttlMs = deps.options?.ttlMs ?? DEFAULT_LEASE_OPTIONS.ttlMs;
    this.options = {
      ...DEFAULT_LEASE_OPTIONS,
      renewIntervalMs: Math.max(100, Math.floor(ttlMs / 4)),
      ...deps.options,
    };
    this.owner = `${deps.instanceId}:${process.pid}:${randomUUID().slice(0, 8)}`;
    this.place = deps.place === undefined ? processPlace() : deps.place;
    this.clock = deps.clock ?? systemClock;
  }

  /** Whether this instance holds the server's lease now. */
  owns(serverId: string): boolean {
    return this.owned.has(serverId);
  }

  get ownedServers(): ReadonlySet<string> {
    return this.owned;
  }

  /** Milliseconds since the last successful renewal (Infinity before the first). */
  get sinceRenewalMs(): number {
    return this.lastRenewedAt === 0 ? Infinity : performance.now() - this.lastRenewedAt;
  }

  /** Which instance watches a server (null: none right now, e.g. disabled or being taken over). */
  async watcherOf(serverId: string): Promise<{ instanceId: string; thisInstance: boolean } | null> {
    const holder = await this.deps.store.leases.holderOf(serverId);
    return holder ? { instanceId: holder.instanceId, thisInstance: holder.owner === this.owner } : null;
  }

  /** The instances on the database and who holds each lease. */
  async view(): Promise<ClusterView> {
    const [instances, leases] = await Promise.all([
      this.deps.store.leases.instances(),
      this.deps.store.leases.holders(),
    ]);
    const count = new Map<string, number>();
    for (const lease of leases) count.set(lease.owner, (count.get(lease.owner) ?? 0) + 1);
    return {
      self: { instanceId: this.deps.instanceId, owner: this.owner },
      instances: instances.map((i) => ({
        owner: i.owner,
        instanceId: i.instanceId,
        startedAt: new Date(i.startedAt).toISOString(),
        expiresAt: new Date(i.expiresAt).toISOString(),
        servers: count.get(i.owner) ?? 0,
      })),
      leases: leases.map((l) => ({ ...l, expiresAt: l.expiresAt.toISOString() })),
    };
  }

  /** Announces this instance and takes its first share; then renews on a timer. */
  async start(): Promise<void> {
    await this.reclaimFromPredecessors().catch((err: unknown) =>
      this.deps.logger.warn({ err, owner: this.owner }, 'could not look for a previous process of this instance'),
    );
    await this.tick();
    this.schedule();
    // A renewal that hangs (database unreachable, no answer) must not keep the watchers running
    // after the leases lapsed: checked on its own timer, not only when a renewal fails.
    this.watchLapse();
  }

  /**
   * While a renewal waits on `onChange` (stopping the watchers of thousands of servers handed
   * over, starting those taken), this instance stays announced: the renewal's own announcement is
   * not made again until it ends, and after a ttl the instance would count as gone and its
   * servers be taken (seen with 10,000 servers on a busy machine: all of them moved to the other
   * instance, then half back). Then checks whether the leases are lapsing.
   */
  private async keepAliveOrGiveUp(): Promise<void> {
    const { store, instanceId } = this.deps;
    const due = performance.now() - this.lastRenewedAt >= this.options.renewIntervalMs;
    if (this.ticking && this.applying > 0 && due && !this.stopped) {
      try {
        await store.leases.announce(this.owner, instanceId, this.options.ttlMs, {
          place: this.place,
          pid: process.pid,
        });
        this.lastRenewedAt = performance.now();
      } catch {
        // The database does not answer: the check below decides whether to give up.
      }
    }
    await this.giveUpIfLapsing();
  }

  /**
   * A process started again under the same instance id (after a crash or a SIGKILL) would wait up
   * to a ttl for the leases of the process it replaces. They are taken back at once only when that
   * process is proven gone: it announced the same place (the same host, kernel boot and PID
   * namespace, so its pid names a process in our own process table) and no process holds its pid
   * now. A pid that is alive, whatever runs under it now (it may have been reused), proves nothing:
   * those leases lapse on their own. Two processes sharing an instance id on one machine are left
   * alone, as is anything announced from another machine or container.
   */
  private async reclaimFromPredecessors(): Promise<void> {
    const place = this.place;
    if (place === null) return;
    const isGone = this.deps.isGone ?? processGone;
    for (const before of await this.deps.store.leases.predecessors(this.owner, this.deps.instanceId, place)) {
      if (!isGone(before.pid)) continue;
      if ((await this.deps.store.leases.lapse(before.owner)) > 0) {
        this.deps.logger.info(
          { owner: this.owner, previous: before.owner, pid: before.pid },
          'took back the e-mail servers of a previous process of this instance (its pid is gone)',
        );
      }
    }
  }

  /** Stops watching everything when the last renewal is about to be a ttl old. */
  private async giveUpIfLapsing(): Promise<void> {
    if (this.stopped || (this.owned.size === 0 && !this.unapplied)) return;
    const sinceRenew = performance.now() - this.lastRenewedAt;
    if (sinceRenew <= this.options.ttlMs - this.options.renewIntervalMs) return;
    if (this.owned.size > 0) {
      leaseChanges.inc({ change: 'lost' }, this.owned.size);
      this.deps.logger.warn(
        { owner: this.owner, count: this.owned.size, sinceRenewMs: Math.round(sinceRenew) },
        'giving up e-mail servers: leases could not be renewed in time',
      );
    }
    // Stopping the watchers may fail too (the database is likely down): tried again next time.
    await this.setOwned(new Set()).catch((err: unknown) =>
      this.deps.logger.error({ err, owner: this.owner }, 'could not stop watching the servers given up'),
    );
  }

  /** Checks every renewal interval whether the leases are about to lapse (see giveUpIfLapsing). */
  private watchLapse(): void {
    if (this.stopped) return;
    this.watchdog = this.clock.setTimeout(() => {
      this.watchLapse();
      void this.keepAliveOrGiveUp();
    }, this.options.renewIntervalMs);
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = this.clock.setTimeout(() => {
      this.ticking = this.tick().finally(() => {
        this.ticking = undefined;
        this.schedule();
      });
    }, this.options.renewIntervalMs);
  }

  /** One renewal: say we are alive, keep our leases, take or hand over to reach the fair share. */
  async tick(): Promise<void> {
    const { store, logger } = this.deps;
    const { ttlMs } = this.options;
    try {
      await store.leases.announce(this.owner, this.deps.instanceId, ttlMs, { place: this.place, pid: process.pid });
      this.lastRenewedAt = performance.now();
      if (++this.ticks % 720 === 1) await store.leases.forgetDeparted();
      const held = new Set(await store.leases.held(this.owner));
      const lost = [...this.owned].filter((id) => !held.has(id));
      // Leases in the database we do not know of (a release that failed halfway) are kept: they are ours.
      const found = [...held].filter((id) => !this.owned.has(id));
      if (lost.length > 0) {
        // A server disabled or deleted meanwhile is let go of, not lost: only an enabled one was taken.
        const taken = await store.leases.enabledAmong(lost);
        const gone = lost.filter((id) => !taken.includes(id));
        if (gone.length > 0) {
          logger.info({ owner: this.owner, servers: gone }, 'e-mail servers disabled or deleted: no longer watched');
        }
        if (taken.length > 0) {
          leaseChanges.inc({ change: 'lost' }, taken.length);
          logger.warn({ owner: this.owner, servers: taken }, 'leases lost to another instance (not renewed in time)');
        }
      }
      // Also when the last change was not applied: its watchers would run (or not run) for good.
      if (lost.length > 0 || found.length > 0 || this.unapplied) await this.setOwned(held);
      if (this.stopped) return;

      const census = await store.leases.census();
      const instances = Math.max(1, census.instances);
      const share = Math.ceil(census.servers / instances);
      if (this.owned.size < share) {
        const taken = await store.leases.acquire(this.owner, share - this.owned.size);
        if (taken.length > 0 && !this.stopped) {
          leaseChanges.inc({ change: 'acquired' }, taken.length);
          logger.info({ owner: this.owner, count: taken.length, share }, 'e-mail servers taken over');
          await this.setOwned(new Set([...this.owned, ...taken]));
        } else if (taken.length > 0) {
          await store.leases.release(this.owner, taken);
        }
      } else if (this.owned.size > share) {
        const floor = Math.floor(census.servers / instances);
        const holders = [...census.leasesByOwner.values()];
        const someoneShort = holders.length < instances || holders.some((n) => n < floor);
        if (someoneShort) {
          const count = Math.min(this.owned.size - share, this.options.rebalanceStep);
          const handOver = [...this.owned].slice(0, count);
          const keep = new Set(this.owned);
          for (const id of handOver) keep.delete(id);
          await this.setOwned(keep); // watchers stop before the lease is given up
          await store.leases.release(this.owner, handOver);
          leaseChanges.inc({ change: 'released' }, handOver.length);
          logger.info({ owner: this.owner, count: handOver.length, share }, 'e-mail servers handed over to rebalance');
        }
      }
    } catch (err) {
      logger.error({ err, owner: this.owner }, 'lease renewal failed');
      // Without a renewal our leases lapse at the database; stop watching before another instance may start.
      await this.giveUpIfLapsing();
    }
  }

  private async setOwned(next: Set<string>): Promise<void> {
    this.owned = next;
    this.unapplied = true;
    this.applying += 1;
    try {
      await this.deps.onChange(next);
    } finally {
      this.applying -= 1;
    }
    // A newer change made meanwhile is still to be applied.
    if (this.owned === next) this.unapplied = false;
  }

  /**
   * Stops renewing and gives every lease back (call after the watchers stopped), so the other
   * instances take over at their next renewal instead of waiting for the leases to expire.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    this.clock.clearTimeout(this.timer);
    this.clock.clearTimeout(this.watchdog);
    await this.ticking?.catch(() => undefined);
    this.owned = new Set();
    try {
      await this.deps.store.leases.leave(this.owner);
    } catch (err) {
      this.deps.logger.warn({ err, owner: this.owner }, 'could not give leases back; they expire on their own');
    }
  }
}
