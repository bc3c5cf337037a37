import assert from 'node:assert/strict';
import { startSmtpHarness, type SmtpHarness } from '../../../src/harness/smtp-harness.js';
import { classifyDeliveryError, certainlyNotDelivered } from '../../../src/outbound/delivery-error.js';
import { SmtpTransport, smtpTransportOptions } from '../../../src/outbound/smtp-transport.js';
import { AddressPolicy } from '../../../src/shared/address-policy.js';

/**
 * Issue 24 review, finding A, the sending side: a server whose SMTP host a tenant chose sends
 * (and its heartbeats and probes connect) only where MAILROOM_MAIL_ALLOW_PRIVATE allows; the
 * operator's servers connect as before.
 */
describe('SMTP transport and the addresses a tenant-chosen host may reach', () => {
  let smtp: SmtpHarness;
  beforeEach(async () => {
    smtp = await startSmtpHarness();
  });
  afterEach(async () => smtp.close());

  const row = (hostsByTenant: boolean, host = '127.0.0.1') => ({
    smtpHost: host,
    smtpPort: smtp.port,
    smtpTls: 'none' as const,
    smtpCaFile: null,
    proxy: null,
    hostsByTenant,
  });
  const envelope = { from: 'support@example.com', to: ['customer@example.net'] };

  it("refuses to connect a tenant's loopback host, in any spelling: nothing reaches the relay, nothing was sent", async () => {
    for (const host of ['127.0.0.1', '127.1', 'localhost', '::ffff:127.0.0.1']) {
      const transport = new SmtpTransport(
        smtpTransportOptions(row(true, host), null, {}, undefined, AddressPolicy.strict()),
      );
      try {
        await assert.rejects(transport.send(envelope, Buffer.from('Subject: x\r\n\r\nx\r\n')), (err: unknown) => {
          assert.equal((err as { code?: string }).code, 'EADDRNOTALLOWED', `${host}: ${String(err)}`);
          assert.equal(classifyDeliveryError(err).kind, 'unreachable');
          assert.equal(certainlyNotDelivered(err), true);
          return true;
        });
      } finally {
        transport.close();
      }
    }
    assert.equal(smtp.messages.length, 0);
  });

  it('sends through the operator’s loopback host, and a tenant’s where the operator allows it', async () => {
    for (const [hostsByTenant, policy] of [
      [false, AddressPolicy.strict()],
      [true, AddressPolicy.parse('127.0.0.0/8')],
    ] as const) {
      const transport = new SmtpTransport(smtpTransportOptions(row(hostsByTenant), null, {}, undefined, policy));
      try {
        const result = await transport.send(envelope, Buffer.from('Subject: ok\r\n\r\nok\r\n'));
        assert.match(result.response, /^250/);
      } finally {
        transport.close();
      }
    }
    assert.equal((await smtp.waitFor(2)).length, 2);
  });
});
