import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createAccounts } from '../../src/accounts/index.js';
import { CredentialService } from '../../src/auth/credentials.js';
import { startFakeImap, type FakeImapServer } from '../../src/harness/fake-imap/index.js';
import { createInbound, type Inbound } from '../../src/inbound/index.js';
import { SecretSealer } from '../../src/shared/sealed-secrets.js';
import type { Store } from '../../src/store/store.js';
import { loopbackServerBody } from '../support/fixtures.js';
import { forEachBackend } from '../support/api-harness.js';
import { quietLogger, resetStore, sharedStore } from '../support/database.js';
import { FakeClock } from '../support/fake-clock.js';
import { eventually } from '../support/mail.js';

/**
 * A server whose lease this instance lost (the leases lapse when the database cannot be reached)
 * stops being watched at the next reconcile even while the database is down: another instance
 * takes it over, and two watchers of one mailbox must not run side by side.
 */
forEachBackend('inbound watchers: servers no longer held, mailboxes the server refuses', (kind) => {
  let store: Store;
  let imap: FakeImapServer;
  let inbound: Inbound | undefined;

  beforeEach(async () => {
    store = await sharedStore(kind);
    await resetStore(store);
    imap = await startFakeImap({ users: [{ user: 'support@example.com', password: 'pw' }] });
  });
  afterEach(async () => {
    await inbound?.stop();
    inbound = undefined;
    await imap.close();
  });

  async function addServer(sealer: SecretSealer, user = 'support@example.com'): Promise<{ id: string }> {
    const accounts = createAccounts(store, sealer, quietLogger);
    const tenant = await accounts.tenants.create({ name: 'Leases' });
    return accounts.servers.create(tenant.id, loopbackServerBody('Main', imap.port, user, 'pw'));
  }

  it('stops watching a server it no longer holds at once, while a reconcile waits on the database', async () => {
    const sealer = new SecretSealer(randomBytes(32));
    const server = await addServer(sealer);
    const owned = new Set([server.id]);
    inbound = createInbound({
      store,
      credentials: new CredentialService(sealer),
      logger: quietLogger,
      owns: (id) => owned.has(id),
    });
    await inbound.start();
    const watched = inbound;
    await eventually(async () => (['idle', 'polling'].includes(watched.status(server.id).state) ? true : undefined));

    // The database stops answering (a reconcile waits on it), and this instance's lease of the server lapses.
    const servers = store.servers as { fingerprint: () => Promise<string> };
    const fingerprint = servers.fingerprint;
    let answer: (() => void) | undefined;
    servers.fingerprint = () =>
      new Promise<string>((_resolve, reject) => (answer = () => reject(new Error('the database cannot be reached'))));
    const stuck = watched.service.reconcile();
    const stuckOutcome = stuck.then(
      () => 'answered',
      (err: Error) => err.message,
    );
    try {
      owned.delete(server.id);
      const next = watched.service.reconcile(); // as the lease keeper asks when the lease lapses
      await eventually(async () => (watched.status(server.id).state === 'disabled' ? true : undefined), 3_000);
      answer?.();
      assert.equal(await stuckOutcome, 'the database cannot be reached');
      servers.fingerprint = fingerprint;
      await next;
      assert.equal(watched.status(server.id).state, 'disabled', 'still not watched here');
    } finally {
      answer?.(); // never leaves a reconcile waiting, whatever failed above
      servers.fingerprint = fingerprint;
    }
  });

  it('shows the server’s own words when it refuses a command (a watched mailbox that does not exist)', async () => {
    const sealer = new SecretSealer(randomBytes(32));
    const server = await addServer(sealer);
    inbound = createInbound({
      store,
      credentials: new CredentialService(sealer),
      logger: quietLogger,
      options: { mailboxes: ['Archive'], reconnectMinMs: 60_000 },
    });
    await inbound.start();
    const watched = inbound;
    const lastError = await eventually(async () => watched.status(server.id).lastError ?? undefined);
    // The command that failed, and the server's own words.
    assert.match(lastError, /^SELECT Archive failed \(the server said: Mailbox "?Archive"? does not exist\)/);
  });

  it('looks for new servers and retries a refused login when its injected clock says so', async () => {
    const sealer = new SecretSealer(randomBytes(32));
    const clock = new FakeClock();
    const minute = 60_000; // real timers of this length would not fire during the test
    inbound = createInbound({
      store,
      credentials: new CredentialService(sealer),
      logger: quietLogger,
      clock,
      options: { reconcileIntervalMs: minute, authRetryMinMs: minute, authRetryMaxMs: minute },
    });
    await inbound.start();
    const watched = inbound;
    const server = await addServer(sealer, 'late@example.com'); // no such user yet: its login is refused
    assert.equal(watched.status(server.id).state, 'disabled', 'not watched before the next look');
    await eventually(async () => (clock.pendingTimers === 1 ? true : undefined)); // the next look is timed
    clock.advance(minute);
    const refused = await eventually(async () => {
      const status = watched.status(server.id);
      return status.state === 'authError' && status.nextAttemptAt !== null ? status : undefined;
    });
    // Retried after the backoff (half of it at least, with jitter), on the clock.
    const waitMs = Date.parse(String(refused.nextAttemptAt)) - clock.now();
    assert.ok(waitMs >= minute / 2 && waitMs <= minute, `retries in ${waitMs} ms`);
    imap.addUser({ user: 'late@example.com', password: 'pw' });
    clock.advance(waitMs - 1);
    assert.equal(watched.status(server.id).reconnects, 0, 'not before its time');
    clock.advance(1);
    await eventually(async () => (['idle', 'polling'].includes(watched.status(server.id).state) ? true : undefined));
    assert.equal(watched.status(server.id).reconnects, 1);
  });
});
