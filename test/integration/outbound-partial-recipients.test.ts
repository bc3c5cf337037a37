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
import {
  closeOutboundFixture,
  createSendingAccount,
  openOutboundFixture,
  type SendingAccount,
} from '../support/outbound-fixture.js';

const SECOND = 1_000;

/**
 * A server that takes a message for some recipients and refuses others at RCPT TO: nobody is
 * dropped silently. Refused for good (5xx): recorded per recipient with the reply, the message
 * `partially-sent`. Refused for now (4xx): tried again for those recipients only, also after a restart.
 */
describe('outbound: recipients refused while others accept the message [pglite]', function () {
  this.timeout(120_000); // the first suite to use PGlite starts it
  let store: Store;
  let smtp: SmtpHarness;
  let spoolDir: string;
  let account: SendingAccount;
  let clock: FakeClock;
  let outbound: OutboundService | undefined;
  const sealer = new SecretSealer(randomBytes(32));

  const start = async (): Promise<OutboundService> => {
    outbound = new OutboundService({
      store,
      credentials: new CredentialService(sealer),
      logger: quietLogger,
      spoolDir,
      instanceId: 'partial-test',
      clock,
      options: { fsync: false, heartbeatIntervalMs: 0 },
    });
    await outbound.start();
    return outbound;
  };
  const envelopes = (): string[][] => smtp.messages.map((m) => [...m.envelope.to].sort());

  beforeEach(async () => {
    ({ store, smtp, spoolDir } = await openOutboundFixture('pglite', 'partial'));
    account = await createSendingAccount(createAccounts(store, sealer, quietLogger), {
      tenant: 'Partial',
      address: 'partial@example.com',
      relayPort: smtp.port,
    });
    clock = new FakeClock();
  });
  afterEach(async () => {
    await outbound?.stop();
    outbound = undefined;
    await closeOutboundFixture({ smtp, spoolDir });
  });

  it('records a recipient refused for good with the reply, and shows the message partially sent', async () => {
    smtp.faults.rejectRecipient('x550@example.net', 550, '5.1.1 no such user');
    const service = await start();
    const { tenantId, destinationId } = account;
    const sent = await service.accept(tenantId, destinationId, {
      to: ['ok@example.net', 'x550@example.net'],
      text: 'hello',
    });
    const view = await eventually(async () => {
      const v = await service.get(tenantId, destinationId, sent.id);
      return v.status === 'partially-sent' ? v : undefined;
    });
    assert.deepEqual(envelopes(), [['ok@example.net']]);
    assert.equal(view.refusedRecipients.length, 1);
    assert.equal(view.refusedRecipients[0]?.address, 'x550@example.net');
    assert.equal(view.refusedRecipients[0]?.responseCode, 550);
    assert.match(view.refusedRecipients[0]?.reply ?? '', /no such user/);
    assert.deepEqual(view.recipients, ['ok@example.net', 'x550@example.net']);
    // The account's status shows it too, not only the message.
    const refusals = service.status(account.serverId).queue?.recipientRefusals;
    assert.equal(refusals?.permanent, 1);
    assert.equal(refusals?.temporary, 0);
    assert.equal(refusals?.last?.address, 'x550@example.net');
    assert.equal(refusals?.last?.outboundId, sent.id);
    assert.equal(refusals?.last?.responseCode, 550);
    assert.deepEqual(
      view.recipientOutcomes.map((r) => [r.address, r.outcome, r.responseCode]),
      [
        ['ok@example.net', 'sent', 250],
        ['x550@example.net', 'refused', 550],
      ],
    );
  });

  it('a dead letter of a message narrowed to the recipients refused for now names every recipient with its outcome', async () => {
    smtp.faults.rejectRecipient('x452@example.net', 452, '4.2.2 mailbox full', { times: 1 });
    const service = await start();
    const { tenantId, destinationId, serverId } = account;
    const sent = await service.accept(tenantId, destinationId, {
      to: ['ok@example.net', 'x452@example.net'],
      text: 'hello',
    });
    await eventually(async () => {
      const v = await service.get(tenantId, destinationId, sent.id);
      return v.status === 'deferred' ? v : undefined;
    });
    assert.deepEqual(envelopes(), [['ok@example.net']]);
    // The retry (to the one still waiting) is refused for good after DATA: a dead letter.
    smtp.faults.replyAt('data', 554, '5.7.1 message refused');
    const [dead] = await eventually(async () => {
      clock.advance(SECOND * 10);
      const list = await service.deadLetters(tenantId, serverId);
      return list.length > 0 ? list : undefined;
    }, 30_000);
    assert.ok(dead);
    assert.deepEqual(dead.recipients, ['ok@example.net', 'x452@example.net'], 'every original recipient');
    assert.deepEqual(
      dead.recipientOutcomes.map((r) => [r.address, r.outcome, r.responseCode]),
      [
        ['ok@example.net', 'sent', 250],
        ['x452@example.net', 'failed', 554],
      ],
    );
    assert.match(dead.recipientOutcomes[1]?.reply ?? '', /message refused/);
    const view = await service.get(tenantId, destinationId, sent.id);
    assert.deepEqual(
      view.recipientOutcomes.map((r) => r.outcome),
      ['sent', 'failed'],
    );
  });

  it('tries a recipient refused for now again, alone, also after a restart', async () => {
    smtp.faults.rejectRecipient('x452@example.net', 452, '4.2.2 mailbox full', { times: 2 });
    let service = await start();
    const { tenantId, destinationId } = account;
    const sent = await service.accept(tenantId, destinationId, {
      to: ['ok@example.net', 'x452@example.net'],
      text: 'hello',
    });
    const deferred = await eventually(async () => {
      const v = await service.get(tenantId, destinationId, sent.id);
      return v.status === 'deferred' ? v : undefined;
    });
    assert.match(deferred.lastReply ?? '', /x452@example\.net.*mailbox full/);
    assert.deepEqual(envelopes(), [['ok@example.net']]);

    // A restart: the spool file names only the recipient still waiting.
    await service.stop();
    service = await start();
    // Time passes (a second per look): the first retry is refused for now once more, the second taken.
    const done = await eventually(async () => {
      clock.advance(SECOND);
      const v = await service.get(tenantId, destinationId, sent.id);
      return v.status === 'sent' ? v : undefined;
    }, 30_000);
    assert.equal(done.attempts, 3);
    assert.deepEqual(envelopes(), [['ok@example.net'], ['x452@example.net']], 'nobody got it twice');
    assert.deepEqual(done.refusedRecipients, []);
  });
});
