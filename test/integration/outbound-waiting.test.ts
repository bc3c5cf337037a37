import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAccounts } from '../../src/accounts/index.js';
import { CredentialService } from '../../src/auth/credentials.js';
import type { SmtpHarness } from '../../src/harness/smtp-harness.js';
import { OutboundService } from '../../src/outbound/outbound-service.js';
import { SecretSealer } from '../../src/shared/sealed-secrets.js';
import type { Store } from '../../src/store/store.js';
import { quietLogger } from '../support/database.js';
import { closeOutboundFixture, createSendingAccount, openOutboundFixture } from '../support/outbound-fixture.js';
import { FakeClock } from '../support/fake-clock.js';
import { capturingLogger } from '../support/log-capture.js';
import { eventually } from '../support/mail.js';

type Line = Record<string, unknown>;

const HOUR = 3_600_000;

/** Mail that waits in the spool longer than the warning age (4 h) raises a warning, once per message. */
describe('outbound: a warning after 4 hours of waiting [pglite]', () => {
  let store: Store;
  let smtp: SmtpHarness;
  let spoolDir: string;
  let outbound: OutboundService | undefined;

  before(async () => {
    ({ store, smtp, spoolDir } = await openOutboundFixture('pglite', 'waiting'));
    await smtp.stop(); // the relay is unreachable throughout
  });
  after(async () => {
    await outbound?.stop();
    await closeOutboundFixture({ smtp, spoolDir });
  });

  it('warns (log line and alert) for each message once it has waited 4 hours, on an injected clock', async () => {
    const sealer = new SecretSealer(randomBytes(32));
    const accounts = createAccounts(store, sealer, quietLogger);
    const { tenantId, serverId, destinationId } = await createSendingAccount(accounts, {
      tenant: 'Waiting',
      address: 'wait@example.com',
      relayPort: smtp.port,
    });
    const clock = new FakeClock();
    const { logger, lines } = capturingLogger('info');
    outbound = new OutboundService({
      store,
      credentials: new CredentialService(sealer),
      logger,
      spoolDir,
      instanceId: 'waiting-test',
      clock,
      options: { fsync: false, heartbeatIntervalMs: 0 }, // warnAfterMs: the default, 4 h
    });
    await outbound.start();
    const warnings = (): Line[] =>
      lines.map((l) => JSON.parse(l) as Line).filter((l) => l.event === 'outbound-waiting');
    const paused = async (): Promise<void> => {
      await eventually(async () => (outbound?.status(serverId).queue?.state === 'paused' ? true : undefined));
      await new Promise((resolve) => setImmediate(resolve)); // the queue's pass has ended
    };

    const first = await outbound.accept(tenantId, destinationId, { to: ['c@example.net'], text: 'one' });
    await paused();
    clock.advance(HOUR);
    const second = await outbound.accept(tenantId, destinationId, { to: ['c@example.net'], text: 'two' });
    await paused();

    clock.advance(3 * HOUR - 1_000); // the first has waited 4 h less a second
    await paused();
    assert.deepEqual(warnings(), [], 'no warning before 4 hours');

    clock.advance(2_000);
    const [warning] = await eventually(async () => (warnings().length > 0 ? warnings() : undefined));
    assert.equal(warning?.outboundId, first.id);
    assert.equal(warning?.level, 40, 'a warn line');
    assert.equal(warning?.tenantId, tenantId);
    assert.equal(warning?.serverId, serverId);
    assert.ok(Number(warning?.waitedMs) >= 4 * HOUR);

    clock.advance(HOUR);
    await eventually(async () => (warnings().length === 2 ? true : undefined));
    assert.equal(warnings()[1]?.outboundId, second.id);
    clock.advance(5 * HOUR);
    await paused();
    assert.equal(warnings().length, 2, 'once per message');

    const alerts = await eventually(async () => {
      const rows = await store.alerts.listByServer(serverId);
      return rows.length === 2 ? rows : undefined;
    });
    assert.deepEqual(
      alerts.map((a) => a.kind),
      ['outbound_waiting', 'outbound_waiting'],
    );
    assert.match(alerts.map((a) => a.message).join('\n'), /has waited \d+(\.\d)? h in the spool/);

    // Still waiting, not dead-lettered; the stats the /metrics collector reads say how long.
    assert.equal((await outbound.spool.list(serverId)).length, 2);
    const [stats] = outbound.spoolStats().filter((s) => s.serverId === serverId);
    assert.equal(stats?.depth, 2);
    assert.equal(stats?.tenantId, tenantId);
    assert.ok((stats?.oldestAgeMs ?? 0) >= 10 * HOUR - 1_000, JSON.stringify(stats));
  });

  it('looks at its servers again every 5 s of its injected clock, not of the wall clock', async () => {
    const clock = new FakeClock();
    const ownSpool = await mkdtemp(join(tmpdir(), 'mailroom-reconcile-clock-'));
    const service = new OutboundService({
      store,
      credentials: new CredentialService(new SecretSealer(randomBytes(32))),
      logger: quietLogger,
      spoolDir: ownSpool,
      instanceId: 'reconcile-clock-test',
      clock,
      options: { fsync: false, heartbeatIntervalMs: 0 },
    });
    // Each look begins with whether this instance was retired meanwhile.
    let looks = 0;
    const noticeRetirement = service.noticeRetirement.bind(service);
    service.noticeRetirement = () => {
      looks++;
      return noticeRetirement();
    };
    try {
      await service.start();
      clock.advance(4_999);
      assert.equal(looks, 0, 'not before 5 s');
      clock.advance(1);
      assert.equal(looks, 1, 'at 5 s');
      // The next look is timed once this one is over: only the clock brings it.
      await eventually(async () => {
        clock.advance(5_000);
        return looks === 2 ? true : undefined;
      });
    } finally {
      await service.stop();
      await rm(ownSpool, { recursive: true, force: true });
    }
  });
});
