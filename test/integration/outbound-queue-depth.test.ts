import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createAccounts } from '../../src/accounts/index.js';
import { CredentialService } from '../../src/auth/credentials.js';
import type { SmtpHarness } from '../../src/harness/smtp-harness.js';
import { OutboundService } from '../../src/outbound/outbound-service.js';
import { SecretSealer } from '../../src/shared/sealed-secrets.js';
import type { Store } from '../../src/store/store.js';
import { quietLogger } from '../support/database.js';
import { FakeClock } from '../support/fake-clock.js';
import { eventually } from '../support/mail.js';
import { closeOutboundFixture, createSendingAccount, openOutboundFixture } from '../support/outbound-fixture.js';

/**
 * The queue depth a server's status shows is the one /metrics shows (one source), also while the
 * queue is paused and messages only join it (the relay unreachable).
 */
describe('outbound: queue depth while the queue is paused [pglite]', () => {
  let store: Store;
  let smtp: SmtpHarness;
  let spoolDir: string;
  let outbound: OutboundService | undefined;

  before(async () => {
    ({ store, smtp, spoolDir } = await openOutboundFixture('pglite', 'depth'));
    await smtp.stop(); // the relay is unreachable throughout
  });
  after(async () => {
    await outbound?.stop();
    await closeOutboundFixture({ smtp, spoolDir });
  });

  it('counts every queued message in the status, as /metrics does', async () => {
    const sealer = new SecretSealer(randomBytes(32));
    const accounts = createAccounts(store, sealer, quietLogger);
    const { tenantId, serverId, destinationId } = await createSendingAccount(accounts, {
      tenant: 'Depth',
      address: 'depth@example.com',
      relayPort: smtp.port,
    });
    outbound = new OutboundService({
      store,
      credentials: new CredentialService(sealer),
      logger: quietLogger,
      spoolDir,
      instanceId: 'depth-test',
      clock: new FakeClock(), // the probe of the paused queue never comes: messages only join it
      options: { fsync: false, heartbeatIntervalMs: 0 },
    });
    await outbound.start();
    await outbound.accept(tenantId, destinationId, { to: ['c@example.net'], text: 'first' });
    await eventually(async () => (outbound?.status(serverId).queue?.state === 'paused' ? true : undefined));
    for (let i = 0; i < 99; i++)
      await outbound.accept(tenantId, destinationId, { to: ['c@example.net'], text: `${i}` });

    const metrics = outbound.spoolStats().find((s) => s.serverId === serverId);
    const queue = outbound.status(serverId).queue;
    assert.equal(metrics?.depth, 100, '/metrics counts them all');
    assert.equal(queue?.state, 'paused');
    assert.equal(queue?.depth, 100, 'so does the status');
  });
});
