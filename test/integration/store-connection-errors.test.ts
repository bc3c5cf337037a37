import assert from 'node:assert/strict';
import pg from 'pg';
import { createDataSource } from '../../src/store/data-source.js';
import { createTestDatabase } from '../support/database.js';
import { postgresMissing, skipWithout } from '../support/requirements.js';

/**
 * A pooled connection that the server ends (an administrator's or a shutdown's FATAL 57P01) while
 * nobody listens on it (just handed out by the pool, before TypeORM attaches its listener) must
 * not throw its 'error' event into the process.
 */
describe('store: a connection ended by the server while nobody listens on it [postgres]', () => {
  let databaseUrl: string;
  before(async function () {
    skipWithout(this, await postgresMissing());
    databaseUrl = await createTestDatabase();
  });

  it('keeps the process alive: the connection is dropped, the next one works', async () => {
    const { dataSource } = createDataSource({ databaseUrl, poolSize: 2 });
    await dataSource.initialize();
    const admin = new pg.Client({ connectionString: databaseUrl });
    await admin.connect();
    try {
      const pool = (dataSource.driver as unknown as { master: pg.Pool }).master;
      // Handed out as to TypeORM, whose listener is not attached yet: the caller adds none.
      const client = await pool.connect();
      const [{ pid }] = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows as [
        { pid: number },
      ];
      const seen: Error[] = [];
      const uncaught = (err: Error): void => void seen.push(err);
      process.prependListener('uncaughtException', uncaught);
      try {
        await admin.query('SELECT pg_terminate_backend($1)', [pid]);
        await waitUntil(() => !(client as unknown as { _queryable: boolean })._queryable);
      } finally {
        process.off('uncaughtException', uncaught);
      }
      assert.deepEqual(seen, [], 'no uncaught exception');
      client.release(true);
      assert.deepEqual(await dataSource.query('SELECT 1 AS one'), [{ one: 1 }]);
    } finally {
      await admin.end();
      await dataSource.destroy();
    }
  });
});

async function waitUntil(done: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
