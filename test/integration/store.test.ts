import assert from 'node:assert/strict';
import { forEachBackend } from '../support/api-harness.js';
import { resetStore, sharedStore } from '../support/database.js';
import { MIGRATIONS } from '../../src/store/migrations/index.js';
import { newId, uniqueViolationOf, type Store } from '../../src/store/store.js';

forEachBackend('store', (kind) => {
  let store: Store;
  beforeEach(async () => {
    store = await sharedStore(kind);
    await resetStore(store);
  });

  it('has a schema exactly as the entities describe it (migrations and entities agree)', async () => {
    assert.deepEqual(await store.pendingSchemaChanges(), []);
  });

  it('records applied migrations', async () => {
    const rows = await store.query<{ name: string }>('SELECT name FROM mailroom_migrations ORDER BY id');
    assert.deepEqual(
      rows.map((r) => r.name),
      MIGRATIONS.map((M) => new M().name),
    );
  });

  it('reports unique-index collisions by index name', async () => {
    await store.tenants.insert({ id: newId(), name: 'A', nameKey: 'a' });
    await assert.rejects(store.tenants.insert({ id: newId(), name: 'A', nameKey: 'a' }), (err: unknown) => {
      assert.equal(uniqueViolationOf(err), 'tenants_name_key_uq');
      return true;
    });
  });

  it('rolls a failed transaction back entirely', async () => {
    await assert.rejects(
      store.transaction(async (tx) => {
        await tx.tenants.insert({ id: newId(), name: 'Gone', nameKey: 'gone' });
        throw new Error('boom');
      }),
      /boom/,
    );
    assert.equal((await store.tenants.list()).length, 0);
  });

  it('keeps a transaction apart from work running beside it', async () => {
    // On PGlite every query shares one session: without exclusive hand-out, the insert running
    // beside the transaction would be rolled back with it.
    let release!: () => void;
    let inserted!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const insideDone = new Promise<void>((resolve) => (inserted = resolve));
    const tx = store
      .transaction(async (t) => {
        await t.tenants.insert({ id: newId(), name: 'Inside', nameKey: 'inside' });
        inserted();
        await held;
        throw new Error('rollback');
      })
      .catch(() => undefined);
    await insideDone;
    const beside = store.tenants.insert({ id: newId(), name: 'Beside', nameKey: 'beside' });
    setTimeout(release, 50);
    await Promise.all([tx, beside]);
    assert.deepEqual(
      (await store.tenants.list()).map((t) => t.name),
      ['Beside'],
    );
  });
});
