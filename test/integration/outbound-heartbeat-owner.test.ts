import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createAccounts } from '../../src/accounts/index.js';
import { CredentialService } from '../../src/auth/credentials.js';
import type { SmtpHarness } from '../../src/harness/smtp-harness.js';
import { OutboundService } from '../../src/outbound/outbound-service.js';
import { SecretSealer } from '../../src/shared/sealed-secrets.js';
import type { Store } from '../../src/store/store.js';
import { quietLogger } from '../support/database.js';
import { closeOutboundFixture, openOutboundFixture } from '../support/outbound-fixture.js';

/**
 * With several instances, an account's heartbeat is sent by the instance that holds its lease
 * (the one watching the mailbox the heartbeat must arrive in), and only by it.
 */
describe('heartbeat follows the lease [pglite]', () => {
  let store: Store;
  let smtp: SmtpHarness;
  let spoolDir: string;

  before(async () => {
    ({ store, smtp, spoolDir } = await openOutboundFixture('pglite', 'beat-owner'));
  });
  after(() => closeOutboundFixture({ smtp, spoolDir }));

  it('starts the heartbeat when the lease is taken and stops it when the lease is gone', async () => {
    const sealer = new SecretSealer(randomBytes(32));
    const accounts = createAccounts(store, sealer, quietLogger);
    const tenant = await accounts.tenants.create({ name: 'Beat owner' });
    const server = await accounts.servers.create(tenant.id, {
      name: 'Beating',
      imap: { host: '127.0.0.1', port: 1, user: 'beat@example.com', auth: { method: 'password', password: 'x' } },
      smtp: { host: '127.0.0.1', port: smtp.port, auth: { mode: 'none' }, heartbeatAddress: 'beat@example.com' },
    });
    const owned = new Set<string>();
    const outbound = new OutboundService({
      store,
      credentials: new CredentialService(sealer),
      logger: quietLogger,
      spoolDir,
      instanceId: 'beat-owner',
      options: { fsync: false, heartbeatIntervalMs: 200 },
      owns: (id) => owned.has(id),
    });
    await outbound.start();
    try {
      await new Promise((resolve) => setTimeout(resolve, 600));
      assert.equal(outbound.status(server.id).heartbeat, null, 'no heartbeat without the lease');
      assert.equal(smtp.messages.length, 0);

      owned.add(server.id);
      await outbound.reconcile();
      await smtp.waitFor(1, 10_000);
      assert.notEqual(outbound.status(server.id).heartbeat, null);

      owned.delete(server.id);
      await outbound.reconcile();
      assert.equal(outbound.status(server.id).heartbeat, null, 'the heartbeat stopped with the lease');
      const sent = smtp.messages.length;
      await new Promise((resolve) => setTimeout(resolve, 600));
      assert.equal(smtp.messages.length, sent, 'no heartbeat after the lease is gone');
    } finally {
      await outbound.stop();
    }
  });
});
