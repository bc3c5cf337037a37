import assert from 'node:assert/strict';
import { startFakeImap, type FakeImapServer } from '../../src/harness/fake-imap/index.js';
import { startSmtpHarness, type SmtpHarness } from '../../src/harness/smtp-harness.js';
import { openApiHarness, type ApiHarness } from '../support/api-harness.js';
import { addCleanup } from '../support/cleanup.js';
import { postgresMissing, skipWithout } from '../support/requirements.js';
import { eventually, rawMail } from '../support/mail.js';
import { createSendingAccount } from '../support/outbound-fixture.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON answers in tests

/**
 * International addresses (RFC 6530–6532): a destination or recipient with a Unicode domain or
 * local part is taken and stored in one form (NFC, the domain in Unicode); mail to the Unicode or
 * the punycode form reaches it; outbound goes with SMTPUTF8 to a server that offers it, with
 * punycode domains to one that does not, and a Unicode local part there fails plainly.
 */
describe('international addresses [postgres]', function () {
  let h: ApiHarness;
  let tenantId: string;

  before(async function () {
    skipWithout(this, await postgresMissing());
  });
  beforeEach(async () => {
    h = await openApiHarness('postgres');
    tenantId = (await h.call<Obj>('POST', '/api/v1/tenants', { name: 'International' })).body.id;
  });
  afterEach(async () => {
    await h.close();
  });

  async function server(imapPort: number, smtpPort: number, user = 'info@xn--bcher-kva.example'): Promise<string> {
    const res = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/servers`, {
      name: `Server ${smtpPort}`,
      imap: { host: '127.0.0.1', port: imapPort, secure: false, user, auth: { method: 'password', password: 'pw' } },
      smtp: { host: '127.0.0.1', port: smtpPort, auth: { mode: 'none' } },
    });
    assert.equal(res.status, 201, res.raw);
    return res.body.id;
  }

  it('stores a Unicode or punycode address in one form, and knows both as the same mailbox', async () => {
    const serverId = await server(1, 2);
    const create = (name: string, address: string) =>
      h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/destinations`, { name, address, serverId });
    const info = await create('Info', 'info@Bücher.Example');
    assert.equal(info.status, 201, info.raw);
    assert.equal(info.body.address, 'info@bücher.example');
    const again = await create('Info again', 'INFO@xn--bcher-kva.example');
    assert.equal(again.status, 409, again.raw);
    assert.equal(again.body.error.code, 'DUPLICATE_ADDRESS');
    const jose = await create('José', 'jose\u0301@bücher.example');
    assert.equal(jose.status, 201, jose.raw);
    assert.equal(jose.body.address, 'jos\u00e9@bücher.example', 'NFC');
    const bad = await create('Bad', 'info at bücher');
    assert.equal(bad.status, 400, bad.raw);
    assert.equal(bad.body.error.field, 'address');
    assert.match(bad.body.error.message, /'address' must be a valid e-mail address/);
  });

  it('routes mail to the Unicode or the punycode form of an address to its destination', async () => {
    const imap: FakeImapServer = await startFakeImap({
      users: [{ user: 'info@xn--bcher-kva.example', password: 'pw' }],
    });
    addCleanup(() => imap.close());
    const serverId = await server(imap.port, 2);
    const destination = async (name: string, address: string): Promise<string> => {
      const res = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/destinations`, { name, address, serverId });
      assert.equal(res.status, 201, res.raw);
      return res.body.id;
    };
    const info = await destination('Info', 'info@bücher.example');
    const jose = await destination('José', 'josé@bücher.example');
    const mailbox = 'info@xn--bcher-kva.example';
    imap.append(mailbox, 'INBOX', rawMail({ to: 'info@xn--bcher-kva.example', subject: 'punycode' }));
    // RFC 6532: UTF-8 in the header as it is.
    imap.append(mailbox, 'INBOX', Buffer.from(rawMail({ to: 'Info <INFO@Bücher.example>', subject: 'unicode' })));
    imap.append(mailbox, 'INBOX', Buffer.from(rawMail({ to: 'jose\u0301@xn--bcher-kva.example', subject: 'nfd' })));
    imap.append(mailbox, 'INBOX', rawMail({ to: 'info@bucher.example', subject: 'lookalike' }));
    await h.inbound.start();
    const feed = (id: string) =>
      eventually(async () => {
        const res = await h.call<Obj>('GET', `/api/v1/tenants/${tenantId}/destinations/${id}/messages`);
        return res.body.messages.length > 0 ? (res.body.messages as Obj[]) : undefined;
      });
    const unrouted = await eventually(async () => {
      const res = await h.call<Obj>('GET', `/api/v1/tenants/${tenantId}/servers/${serverId}/messages?status=unrouted`);
      return res.body.messages.length > 0 ? (res.body.messages as Obj[]) : undefined;
    });
    assert.deepEqual(
      (await feed(info)).map((m) => m.subject),
      ['punycode', 'unicode'],
    );
    assert.deepEqual(
      (await feed(jose)).map((m) => m.subject),
      ['nfd'],
    );
    assert.deepEqual(
      unrouted.map((m) => m.subject),
      ['lookalike'],
    );
  });

  describe('sending', () => {
    let withUtf8: SmtpHarness;
    let withoutUtf8: SmtpHarness;
    beforeEach(async () => {
      // Each test's own pair (a closure over the variables would close only the last pair).
      const utf8 = await startSmtpHarness({});
      const plain = await startSmtpHarness({ smtpUtf8: false });
      withUtf8 = utf8;
      withoutUtf8 = plain;
      addCleanup(() => utf8.close());
      addCleanup(() => plain.close());
    });

    const sendAndWait = async (account: { tenantId: string; destinationId: string }, to: string[], want: string) => {
      const sent = await h.outbound.accept(account.tenantId, account.destinationId, { to, text: 'Grüße' });
      return eventually(async () => {
        const view = await h.outbound.get(account.tenantId, account.destinationId, sent.id);
        return view.status === want ? view : undefined;
      });
    };

    it('uses SMTPUTF8 with a server that offers it', async () => {
      const account = await createSendingAccount(h.accounts, {
        tenant: 'Utf8',
        address: 'info@bücher.example',
        relayPort: withUtf8.port,
      });
      await h.outbound.start();
      const view = await sendAndWait(account, ['josé@xn--bcher-kva.example', 'kunde@example.com'], 'sent');
      assert.deepEqual(view.recipients, ['josé@bücher.example', 'kunde@example.com']);
      const [message] = withUtf8.messages;
      assert.ok(message);
      assert.equal(message.envelope.smtpUtf8, true);
      assert.deepEqual(withUtf8.envelopeCommands, [
        'MAIL FROM:<info@bücher.example> SMTPUTF8',
        'RCPT TO:<josé@bücher.example>',
        'RCPT TO:<kunde@example.com>',
      ]);
    });

    it('writes punycode domains for a server without SMTPUTF8, and refuses a Unicode local part plainly', async () => {
      const account = await createSendingAccount(h.accounts, {
        tenant: 'Ascii',
        address: 'info@bücher.example',
        relayPort: withoutUtf8.port,
      });
      await h.outbound.start();
      await sendAndWait(account, ['kunde@münchen.de'], 'sent');
      const [message] = withoutUtf8.messages;
      assert.ok(message);
      assert.equal(message.envelope.smtpUtf8, false);
      // As written on the wire (smtp-server itself shows a punycode domain in Unicode).
      assert.deepEqual(withoutUtf8.envelopeCommands, [
        'MAIL FROM:<info@xn--bcher-kva.example>',
        'RCPT TO:<kunde@xn--mnchen-3ya.de>',
      ]);

      const failed = await sendAndWait(account, ['josé@bücher.example', 'kunde@example.com'], 'failed');
      assert.match(failed.lastReply ?? '', /does not offer SMTPUTF8, which josé@bücher\.example needs/);
      assert.equal(failed.attempts, 1);
      assert.equal(withoutUtf8.messages.length, 1, 'nothing of it was sent');
      // The connection is fine for the next message.
      await sendAndWait(account, ['kunde@example.com'], 'sent');
      assert.equal(withoutUtf8.messages.length, 2);
    });
  });
});
