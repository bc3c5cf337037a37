import type { LeaseKeeper } from './cluster/lease-keeper.js';
import type { Inbound } from './inbound/index.js';
import {
  imapSessionState,
  inboundFetchBytes,
  inboundFetchWaiting,
  liveInstances,
  oauthStatus,
  outboundRequestsOldestAge,
  outboundRequestsWaiting,
  serverLeaseOwned,
  spoolDepth,
  spoolOldestAge,
} from './shared/metrics.js';
import type { Store } from './store/store.js';

/** What the outbound side tells about its spool (per e-mail server). */
export type SpoolStats = () =>
  | Array<{ serverId: string; depth: number; oldestAgeMs: number | null }>
  | Promise<Array<{ serverId: string; depth: number; oldestAgeMs: number | null }>>;

/**
 * Fills the state gauges of `shared/metrics.ts` from the engine's current state just before a
 * scrape: watcher states and leases of this instance, OAuth statuses, spool depth. Counters are
 * incremented where things happen; nothing here keeps a copy of state between scrapes.
 */
export function engineStateCollector(deps: {
  store: Store;
  inbound: Inbound;
  leases: LeaseKeeper;
  spoolStats?: SpoolStats;
}): () => Promise<void> {
  return async () => {
    const servers = await deps.store.servers.listAll();
    const tenantOf = new Map(servers.map((s) => [s.id, s.tenantId]));
    imapSessionState.reset();
    serverLeaseOwned.reset();
    for (const server of servers) {
      const labels = { tenant_id: server.tenantId, server_id: server.id };
      if (deps.leases.owns(server.id)) serverLeaseOwned.set(labels, 1);
      // Every server this instance has a watcher for (normally exactly the leased ones).
      const state = deps.inbound.status(server.id).state;
      if (state !== 'disabled') imapSessionState.set({ ...labels, state }, 1);
    }
    const budget = deps.inbound.service.fetchBudget;
    inboundFetchBytes.set({ kind: 'held' }, budget.inUse);
    inboundFetchBytes.set({ kind: 'limit' }, budget.limit);
    inboundFetchWaiting.set(budget.queued);
    liveInstances.set((await deps.store.leases.census()).instances);
    oauthStatus.reset();
    for (const grant of await deps.store.oauthGrants.listStatuses()) {
      oauthStatus.set(
        { tenant_id: grant.tenantId, server_id: grant.serverId, purpose: grant.purpose, status: grant.status },
        1,
      );
    }
    await collectOutboundRequests(deps.store);
    spoolDepth.reset();
    spoolOldestAge.reset();
    for (const stat of (await deps.spoolStats?.()) ?? []) {
      const labels = { tenant_id: tenantOf.get(stat.serverId) ?? '', server_id: stat.serverId };
      spoolDepth.set(labels, stat.depth);
      spoolOldestAge.set(labels, stat.oldestAgeMs === null ? 0 : stat.oldestAgeMs / 1000);
    }
  };
}

/**
 * Requests left for the instance holding a message (cancel, re-queue, delete), per instance they
 * wait for: the same figures on every instance (they come from the shared database).
 */
export async function collectOutboundRequests(store: Store, now = Date.now()): Promise<void> {
  const running = new Set((await store.leases.instances()).map((i) => i.instanceId));
  outboundRequestsWaiting.reset();
  outboundRequestsOldestAge.reset();
  for (const w of await store.outboundRequests.waitingByInstance()) {
    outboundRequestsWaiting.set(
      { instance_id: w.instanceId, holder_running: String(running.has(w.instanceId)) },
      w.waiting,
    );
    outboundRequestsOldestAge.set({ instance_id: w.instanceId }, Math.max(0, (now - w.oldestAt.getTime()) / 1000));
  }
}
