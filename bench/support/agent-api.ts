/**
 * The engine's agent-facing API over a fresh PostgreSQL database, listening on 127.0.0.1, as the
 * long-poll and event-stream benchmarks drive it: one tenant, `destinations` destinations, the
 * inbound side's feed and routed-message signals (NOTIFY included; no mailbox is watched), and
 * `route()` to store messages as the routing commit does and signal them as it does after it.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAccounts } from '../../src/accounts/index.js';
import { buildApi } from '../../src/api/http-server.js';
import { CredentialService } from '../../src/auth/credentials.js';
import { createInbound } from '../../src/inbound/index.js';
import { OutboundService } from '../../src/outbound/outbound-service.js';
import { SecretSealer } from '../../src/shared/sealed-secrets.js';
import { Store } from '../../src/store/store.js';
import { addCleanup } from '../../test/support/cleanup.js';
import { createTestDatabase, quietLogger } from '../../test/support/database.js';
import { routeMessages } from '../../test/support/routed-messages.js';

export interface AgentApi {
  port: number;
  token: string;
  tenantId: string;
  destinationIds: string[];
  store: Store;
  /** Routes one message to the destination (committed, then signalled); resolves after the signal. */
  route(destinationId: string): Promise<void>;
  /** Waits held open now. */
  waiting(): number;
  /** Transactions committed in the benchmark's database so far (pg_stat_database). */
  transactions(): Promise<number>;
}

export async function startAgentApi(destinations: number): Promise<AgentApi> {
  const databaseUrl = await createTestDatabase();
  const store = await Store.open({ databaseUrl }, quietLogger);
  addCleanup(() => store.close(), 'first');
  const sealer = new SecretSealer(randomBytes(32));
  const accounts = createAccounts(store, sealer, quietLogger);
  const credentials = new CredentialService(sealer);
  const notifications = store.notifications(quietLogger);
  addCleanup(() => notifications.close(), 'first');
  const inbound = createInbound({ store, credentials, logger: quietLogger, notifications });
  inbound.signals.start();
  addCleanup(async () => inbound.signals.stop(), 'first');
  const spoolDir = await mkdtemp(join(tmpdir(), 'mailroom-bench-spool-'));
  addCleanup(() => rm(spoolDir, { recursive: true, force: true }));
  const outbound = new OutboundService({
    store,
    credentials,
    logger: quietLogger,
    spoolDir,
    instanceId: 'bench',
    renderResponse: () => Promise.reject(new Error('no responses in this benchmark')),
    options: { fsync: false },
  });
  const token = `bench-${randomBytes(12).toString('hex')}`;
  const app = await buildApi({
    accounts,
    store,
    inbound,
    outbound,
    logger: quietLogger,
    adminToken: token,
    waitsPerToken: 1_000_000,
    waitsPerTenant: 1_000_000,
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  addCleanup(async () => {
    inbound.feed.endWaits();
    await app.close();
  }, 'first');
  const tenant = await accounts.tenants.create({ name: 'Agents' });
  const server = await accounts.servers.create(tenant.id, {
    name: 'Main',
    imap: { host: '127.0.0.1', port: 1, secure: false, user: 'agents', auth: { method: 'password', password: 'x' } },
    smtp: { host: '127.0.0.1', port: 2525, auth: { mode: 'none' } },
  });
  const destinationIds: string[] = [];
  for (let d = 0; d < destinations; d += 1) {
    const created = await accounts.destinations.create(tenant.id, {
      name: `Queue ${d}`,
      address: `queue-${d}@bench.example`,
      serverId: server.id,
    });
    destinationIds.push(created.id);
  }
  const dbName = new URL(databaseUrl).pathname.slice(1);
  return {
    port: (app.server.address() as AddressInfo).port,
    token,
    tenantId: tenant.id,
    destinationIds,
    store,
    async route(destinationId) {
      await routeMessages(store, { tenantId: tenant.id, serverId: server.id, destinationId }, 1);
      inbound.signals.routed([destinationId]);
    },
    waiting: () => inbound.signals.waiting,
    async transactions() {
      const rows = await store.query<{ n: string }>(
        'SELECT xact_commit + xact_rollback AS n FROM pg_stat_database WHERE datname = $1',
        [dbName],
      );
      return Number(rows[0]?.n ?? 0);
    },
  };
}
