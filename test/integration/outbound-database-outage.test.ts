import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAccounts } from '../../src/accounts/index.js';
import { CredentialService } from '../../src/auth/credentials.js';
import { startSmtpHarness, type SmtpHarness } from '../../src/harness/smtp-harness.js';
import { OutboundService } from '../../src/outbound/outbound-service.js';
import { SecretSealer } from '../../src/shared/sealed-secrets.js';
import { Store } from '../../src/store/store.js';
import { quietLogger } from '../support/database.js';
import { FakeClock } from '../support/fake-clock.js';
import { capturingLogger } from '../support/log-capture.js';
import { eventually } from '../support/mail.js';
import { createSendingAccount } from '../support/outbound-fixture.js';
import { privatePostgresMissing, startPrivatePostgres, type PrivatePostgres } from '../support/private-postgres.js';
import { skipWithout } from '../support/requirements.js';

/**
 * A queue whose pass fails because the database is down (here: the rate limit's place in the send
 * log cannot be taken) goes on by itself once the database is back, on the injected clock: not
 * only when another message is accepted or at the periodic sweep a minute later.
 */
describe('outbound: a queue goes on by itself after a database outage (private PostgreSQL cluster)', function () {
  this.timeout(60_000);
  let postgres: PrivatePostgres;
  let store: Store | undefined;
  let smtp: SmtpHarness | undefined;
  let outbound: OutboundService | undefined;
  let spoolDir: string | undefined;

  before(async function () {
    skipWithout(this, privatePostgresMissing());
    postgres = await startPrivatePostgres();
  });
  after(async () => {
    await outbound?.stop();
    await store?.close();
    await smtp?.close();
    if (spoolDir) await rm(spoolDir, { recursive: true, force: true });
  });

  it('retries the failed pass on its own once the database answers again', async () => {
    store = await Store.open({ databaseUrl: postgres.url, poolSize: 2 }, quietLogger);
    smtp = await startSmtpHarness({});
    await smtp.stop(); // the relay is unreachable at first: the messages wait in a paused queue
    spoolDir = await mkdtemp(join(tmpdir(), 'mailroom-queue-outage-'));
    const sealer = new SecretSealer(randomBytes(32));
    const { tenantId, serverId, destinationId } = await createSendingAccount(
      createAccounts(store, sealer, quietLogger),
      {
        tenant: 'Queue outage',
        address: 'queue@example.com',
        relayPort: smtp.port,
        smtp: { rateLimitPerHour: 100 }, // every pass asks the database for a place
      },
    );
    const clock = new FakeClock();
    const { logger, lines } = capturingLogger('info');
    outbound = new OutboundService({
      store,
      credentials: new CredentialService(sealer),
      logger,
      spoolDir,
      instanceId: 'queue-outage',
      clock,
      options: { fsync: false, heartbeatIntervalMs: 0 },
    });
    await outbound.start();
    const ids: string[] = [];
    for (const text of ['one', 'two', 'three']) {
      ids.push((await outbound.accept(tenantId, destinationId, { to: ['c@example.net'], text })).id);
    }
    await eventually(async () => (outbound?.status(serverId).queue?.state === 'paused' ? true : undefined));

    await postgres.stop();
    await smtp.start();
    clock.advance(outbound.options.probeIntervalMs); // the probe succeeds; the place cannot be taken
    await eventually(async () => (lines.some((l) => l.includes('outbound queue failed; retrying')) ? true : undefined));
    assert.equal(smtp.messages.length, 0);

    await postgres.start();
    const delivered = await eventually(async () => {
      clock.advance(1_000);
      return smtp?.messages.length === 3 ? smtp.messages : undefined;
    });
    assert.equal(delivered.length, 3);
    await eventually(async () => {
      const rows = await Promise.all(ids.map((id) => store?.outbound.byId(id)));
      return rows.every((row) => row?.status === 'sent') ? true : undefined;
    });
  });
});
