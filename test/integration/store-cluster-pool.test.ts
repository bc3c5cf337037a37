import assert from 'node:assert/strict';
import pg from 'pg';
import { Store } from '../../src/store/store.js';
import { createTestDatabase, quietLogger } from '../support/database.js';
import { eventually } from '../support/mail.js';
import { postgresMissing, skipWithout } from '../support/requirements.js';

/**
 * An outside review opened 1,000 event streams of one tenant (within its limits): their reads
 * filled the connection pool, lease renewal queued behind them for 18 s, the leases lapsed and
 * every tenant's mailbox watchers were given up. The leases have a pool of their own.
 */
describe('store: leases keep a connection pool of their own [postgres]', () => {
  let store: Store;
  let databaseUrl: string;
  before(async function () {
    skipWithout(this, await postgresMissing());
    databaseUrl = await createTestDatabase();
    store = await Store.open({ databaseUrl, poolSize: 2 }, quietLogger);
  });
  after(async () => {
    await store?.close();
  });

  it('renews an instance while every connection of the main pool is busy', async () => {
    // Both main connections held for 3 s (as a burst of API reads would hold them).
    const busy = Promise.all([1, 2].map(() => store.query('SELECT pg_sleep(3)')));
    // Both statements are running, as the server itself says (from a connection of neither pool).
    const observer = new pg.Client({ connectionString: databaseUrl });
    await observer.connect();
    try {
      await eventually(async () => {
        const running = await observer.query<{ n: string }>(
          `SELECT count(*) AS n FROM pg_stat_activity WHERE state = 'active' AND query = 'SELECT pg_sleep(3)'`,
        );
        return Number(running.rows[0]?.n) === 2 ? true : undefined;
      });
    } finally {
      await observer.end();
    }
    const renewed = store.leases.announce('owner-a', 'instance-a', 20_000).then(() => 'renewed' as const);
    const first = await Promise.race([renewed, busy.then(() => 'main pool free' as const)]);
    assert.equal(first, 'renewed', 'the renewal did not wait for the main pool');
    await busy;
    const rows = await store.query<{ n: string }>(`SELECT count(*) AS n FROM engine_instances WHERE owner = 'owner-a'`);
    assert.equal(Number(rows[0]?.n), 1);
  });
});
