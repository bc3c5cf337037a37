import assert from 'node:assert/strict';
import { startFakeIdp, type FakeIdp } from '../../src/harness/fake-idp/index.js';
import { startFakeImap, type FakeImapServer } from '../../src/harness/fake-imap/index.js';
import { startSmtpHarness, type SmtpHarness } from '../../src/harness/smtp-harness.js';
import { FAST_INBOUND, openApiHarness, type ApiHarness } from '../support/api-harness.js';
import { addCleanup } from '../support/cleanup.js';
import { isPostgresReachable } from '../support/database.js';
import { deviceCodeAuth } from '../support/fixtures.js';
import { eventually, rawMail } from '../support/mail.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON answers in tests

const SHARED = 'support@contoso.test';
const DELEGATE = 'alice@contoso.test';

/**
 * A Microsoft 365 shared mailbox (support@, nobody signs in to it) over IMAP and SMTP: a person
 * with Full Access and Send As signs in with the device code, and the engine presents that
 * person's token with the shared mailbox as the XOAUTH2 user, as Exchange Online takes it. The
 * fake identity provider decides, as Exchange does, whether a token opens a mailbox
 * (`grantMailboxAccess`); the fake IMAP server and the SMTP harness ask it.
 */
describe('shared mailbox signed in by a delegate (device code, XOAUTH2 as the shared mailbox)', function () {
  this.timeout(120_000);
  let idp: FakeIdp;
  let imap: FakeImapServer;
  let smtp: SmtpHarness;
  let h: ApiHarness;

  beforeEach(async () => {
    // Each test's own servers are closed (a closure over the variables would close only the last test's).
    const provider = await startFakeIdp({ pollIntervalSeconds: 1 });
    idp = provider;
    addCleanup(() => provider.close());
    const mailbox = await startFakeImap({ users: [{ user: SHARED }], verifyAccessToken: provider.verifyAccessToken });
    imap = mailbox;
    addCleanup(() => mailbox.close());
    const relay = await startSmtpHarness({
      verifyAccessToken: (user, token) => provider.verifyAccessToken(user, token),
    });
    smtp = relay;
    addCleanup(() => relay.close());
    const kind = (await isPostgresReachable()) ? 'postgres' : 'pglite';
    const harness = await openApiHarness(kind, FAST_INBOUND, {}, {}, { identityProviderCa: provider.ca });
    h = harness;
    addCleanup(() => harness.close(), 'first');
  });

  async function signedInServer(): Promise<{ tenantId: string; serverId: string; destinationId: string }> {
    const tenantId = (await h.call<Obj>('POST', '/api/v1/tenants', { name: 'Contoso' })).body.id as string;
    const server = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/servers`, {
      name: 'Support (shared)',
      imap: { host: '127.0.0.1', port: imap.port, secure: false, user: SHARED, auth: deviceCodeAuth(idp.url) },
      smtp: { host: '127.0.0.1', port: smtp.port, auth: { mode: 'imap' } },
    });
    assert.equal(server.status, 201, server.raw);
    const serverId = server.body.id as string;
    const destination = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/destinations`, {
      name: 'Support',
      address: SHARED,
      serverId,
    });
    assert.equal(destination.status, 201, destination.raw);
    const oauthUrl = `/api/v1/tenants/${tenantId}/servers/${serverId}/oauth`;
    const code = await h.call<Obj>('POST', `${oauthUrl}/device-code`, { purpose: 'imap' });
    assert.equal(code.status, 200, code.raw);
    assert.ok(idp.approve(code.body.userCode, DELEGATE), 'the delegate signs in as themselves');
    await eventually(async () =>
      (await h.call<Obj>('GET', oauthUrl)).body.imap.status === 'COMPLETE' ? true : undefined,
    );
    return { tenantId, serverId, destinationId: destination.body.id as string };
  }

  it('reads and sends as the shared mailbox with the delegate token, and shows who signed in for which mailbox', async () => {
    idp.grantMailboxAccess(SHARED, DELEGATE);
    const { tenantId, serverId, destinationId } = await signedInServer();

    const status = await h.call<Obj>('GET', `/api/v1/tenants/${tenantId}/servers/${serverId}/oauth`);
    assert.equal(status.body.imap.account, DELEGATE);
    assert.equal(status.body.imap.mailbox, SHARED);
    assert.equal(status.body.smtp.sharesImapSignIn, true);
    assert.equal(status.body.smtp.mailbox, SHARED);

    imap.append(SHARED, 'INBOX', rawMail({ to: SHARED, subject: 'to the shared mailbox' }));
    await h.inbound.start();
    const messages = await eventually(async () => {
      const res = await h.call<Obj>('GET', `/api/v1/tenants/${tenantId}/destinations/${destinationId}/messages`);
      return res.body.messages.length > 0 ? (res.body.messages as Obj[]) : undefined;
    }, 30_000);
    assert.equal(messages[0]?.subject, 'to the shared mailbox');

    await h.outbound.start();
    const sent = await h.outbound.accept(tenantId, destinationId, { to: ['customer@example.net'], text: 'hello' });
    await eventually(async () => {
      const view = await h.outbound.get(tenantId, destinationId, sent.id);
      return view.status === 'sent' ? view : undefined;
    });
    assert.deepEqual(
      smtp.authentications.map((a) => [a.method, a.user, a.accepted]),
      [['XOAUTH2', SHARED, true]],
      'SMTP AUTH as the shared mailbox (Send As)',
    );
    assert.equal(smtp.messages[0]?.envelope.from, SHARED);
  });

  it('is refused by the mailbox server when the delegate has no Full Access, while the sign-in itself stands', async () => {
    const { tenantId, serverId } = await signedInServer();
    await h.inbound.start();
    const status = await eventually(async () => {
      const res = await h.call<Obj>('GET', `/api/v1/tenants/${tenantId}/servers/${serverId}/status`);
      return res.body.inbound.lastError ? res.body : undefined;
    }, 30_000);
    assert.match(JSON.stringify(status.inbound.lastError), /auth|login|credentials/i);
    const oauth = await h.call<Obj>('GET', `/api/v1/tenants/${tenantId}/servers/${serverId}/oauth`);
    assert.equal(oauth.body.imap.account, DELEGATE);
    assert.equal(oauth.body.imap.mailbox, SHARED);
  });
});
