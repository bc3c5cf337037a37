import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createAccounts } from '../../src/accounts/index.js';
import { CredentialService } from '../../src/auth/credentials.js';
import { startFakeImap, type FakeImapServer } from '../../src/harness/fake-imap/index.js';
import { createInbound, type Inbound } from '../../src/inbound/index.js';
import { SecretSealer } from '../../src/shared/sealed-secrets.js';
import type { Store } from '../../src/store/store.js';
import { forEachBackend } from '../support/api-harness.js';
import { quietLogger, resetStore, sharedStore } from '../support/database.js';
import { eventually, rawMail } from '../support/mail.js';

const ACCOUNTS = 6;
const MESSAGES = 30;
/** Five messages a batch, at most 50,000 bytes: a small message is bounded at 10,000 bytes. */
const BATCH = { batchMaxCount: 5, batchMaxBytes: 50_000 };
/** One batch's estimate (5 × 10,000) and a little: a second batch fits only once the first holds its real size. */
const BUDGET = 60_000;

/**
 * Many mailboxes with a backlog at once (as after a takeover of many accounts) share one memory
 * budget for the sources they fetch: batches wait their turn, everything is routed once, and a
 * batch larger than the whole budget still goes (alone).
 */
forEachBackend('inbound fetch memory budget', (kind) => {
  let store: Store;
  let imap: FakeImapServer;
  let inbound: Inbound | undefined;
  const users = Array.from({ length: ACCOUNTS }, (_, i) => `box${i}@example.com`);

  beforeEach(async () => {
    store = await sharedStore(kind);
    await resetStore(store);
    imap = await startFakeImap({ users: users.map((user) => ({ user, password: 'pw' })) });
  });
  afterEach(async () => {
    await inbound?.stop();
    inbound = undefined;
    await imap.close();
  });

  async function watchAll(): Promise<Inbound> {
    const sealer = new SecretSealer(randomBytes(32));
    const accounts = createAccounts(store, sealer, quietLogger);
    // At most five servers a tenant: three tenants of two.
    const tenants = [];
    for (let t = 0; t < ACCOUNTS / 2; t++) tenants.push(await accounts.tenants.create({ name: `Takeover ${t}` }));
    for (const [i, user] of users.entries()) {
      const tenant = tenants[Math.floor(i / 2)] as (typeof tenants)[number];
      const server = await accounts.servers.create(tenant.id, {
        name: user,
        imap: { host: '127.0.0.1', port: imap.port, secure: false, user, auth: { method: 'password', password: 'pw' } },
        smtp: { host: '127.0.0.1', port: 2525, auth: { mode: 'none' } },
      });
      await accounts.destinations.create(tenant.id, { name: user, address: user, serverId: server.id });
    }
    const started = createInbound({
      store,
      credentials: new CredentialService(sealer),
      logger: quietLogger,
      options: { ...BATCH, fetchMemoryBytes: BUDGET },
    });
    inbound = started;
    return started;
  }

  async function routedCounts(): Promise<number[]> {
    const rows = await store.query<{ n: string }>(
      `SELECT count(*) AS n FROM inbound_deliveries d JOIN destinations t ON t.id = d.destination_id
        GROUP BY t.address ORDER BY t.address`,
    );
    return rows.map((r) => Number(r.n));
  }

  it('makes batches wait their turn, stays within the budget and routes every message once', async function () {
    this.timeout(60_000);
    for (const user of users) {
      for (let n = 0; n < MESSAGES; n++) {
        imap.append(user, 'INBOX', rawMail({ to: user, subject: `${user} ${n}`, body: 'x'.repeat(1_500) }));
      }
    }
    const engine = await watchAll();
    const budget = engine.service.fetchBudget;
    let mostWaiting = 0;
    const sampler = setInterval(() => (mostWaiting = Math.max(mostWaiting, budget.queued)), 1);
    try {
      await engine.start();
      await eventually(async () => {
        const counts = await routedCounts();
        return counts.length === ACCOUNTS && counts.every((n) => n === MESSAGES) ? counts : undefined;
      }, 45_000);
    } finally {
      clearInterval(sampler);
    }
    assert.ok(mostWaiting > 0, 'some batches waited for room');
    assert.ok(budget.peak > 0 && budget.peak <= BUDGET, `peak ${budget.peak} bytes within ${BUDGET}`);
    await eventually(async () => (budget.inUse === 0 ? true : undefined), 5_000);
    const [duplicates] = await store.query<{ n: string }>(
      'SELECT count(*) AS n FROM (SELECT message_id FROM inbound_deliveries GROUP BY message_id, destination_id HAVING count(*) > 1) d',
    );
    assert.equal(Number(duplicates?.n), 0);
  });

  it('fetches a batch larger than the whole budget alone, and the others after it', async function () {
    this.timeout(60_000);
    const [big, ...rest] = users as [string, ...string[]];
    imap.append(big, 'INBOX', rawMail({ to: big, subject: 'large', body: 'y'.repeat(150_000) }));
    for (const user of rest) imap.append(user, 'INBOX', rawMail({ to: user, subject: `${user} small` }));
    const engine = await watchAll();
    await engine.start();
    await eventually(async () => {
      const counts = await routedCounts();
      return counts.length === ACCOUNTS && counts.every((n) => n === 1) ? counts : undefined;
    }, 45_000);
    assert.ok(engine.service.fetchBudget.peak >= 150_000, 'the large batch held its real size');
    await eventually(async () => (engine.service.fetchBudget.inUse === 0 ? true : undefined), 5_000);
  });
});
