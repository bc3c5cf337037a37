import assert from 'node:assert/strict';
import { ImapFlow } from 'imapflow';
import { makeServiceAccountKeyFile, startFakeIdp, type FakeIdp } from '../../src/harness/fake-idp/index.js';
import { startSmtpHarness, type SmtpHarness } from '../../src/harness/smtp-harness.js';
import { FAST_INBOUND, openApiHarness, type ApiHarness } from '../support/api-harness.js';
import { isPostgresReachable } from '../support/database.js';
import { startDovecot, type DovecotInstance } from '../support/dovecot.js';
import { eventually, rawMail } from '../support/mail.js';
import { dovecotMissing, skipWithout } from '../support/requirements.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON answers in tests

const MAILBOX = 'support@workspace.test';
const GMAIL_SCOPE = 'https://mail.google.com/';

/**
 * Google Workspace through a service account with domain-wide delegation: the engine signs a JWT
 * (RFC 7523) with the sealed key, `sub` the mailbox, at the fake Google token endpoint, and logs
 * in to Dovecot (oauth2 passdb: the token is introspected at the fake provider) and to the SMTP
 * harness with XOAUTH2. Delegation not granted is said in plain words.
 */
describe('Google Workspace service account (JWT bearer grant, XOAUTH2 against Dovecot and SMTP)', function () {
  this.timeout(120_000);
  let idp: FakeIdp;
  let dovecot: DovecotInstance;
  let smtp: SmtpHarness;
  let h: ApiHarness;
  let tenantId: string;

  before(async function () {
    skipWithout(this, dovecotMissing());
    idp = await startFakeIdp({ introspection: true });
    dovecot = await startDovecot({ oauth2IntrospectionUrl: idp.introspectionUrl });
    smtp = await startSmtpHarness({ verifyAccessToken: (user, token) => idp.verifyAccessToken(user, token) });
    const kind = (await isPostgresReachable()) ? 'postgres' : 'pglite';
    h = await openApiHarness(kind, FAST_INBOUND, {}, {}, { identityProviderCa: idp.ca });
    tenantId = (await h.call<Obj>('POST', '/api/v1/tenants', { name: 'Workspace' })).body.id as string;
  });
  after(async () => {
    await h?.close();
    await smtp?.close();
    await dovecot?.close();
    await idp?.close();
  });

  const serverBody = (name: string, clientId: string, keyFile: string, user = MAILBOX) => ({
    name,
    imap: {
      host: dovecot.host,
      port: dovecot.port,
      secure: false,
      user,
      auth: { method: 'oauth2', flow: 'service-account', clientId, clientSecret: keyFile, authorityHost: idp.url },
    },
    smtp: { host: '127.0.0.1', port: smtp.port, auth: { mode: 'imap' } },
  });

  it('reads and sends as the mailbox with tokens from the signed assertion; the key stays sealed', async () => {
    const clientId = 'mailroom@project.iam.gserviceaccount.com';
    const { keyFile, publicKey } = makeServiceAccountKeyFile(clientId);
    idp.addServiceAccount({ clientEmail: clientId, publicKey, delegatedScopes: [GMAIL_SCOPE], users: [MAILBOX] });
    const server = await h.call<Obj>(
      'POST',
      `/api/v1/tenants/${tenantId}/servers`,
      serverBody('Gmail', clientId, keyFile),
    );
    assert.equal(server.status, 201, server.raw);
    assert.ok(!server.raw.includes('PRIVATE KEY'), 'the key is never shown');
    const serverId = server.body.id as string;
    const sealed = await h.store.query<{ s: string }>(
      'SELECT imap_client_secret_sealed AS s FROM email_servers WHERE id = $1',
      [serverId],
    );
    assert.ok(sealed[0]?.s && !sealed[0].s.includes('PRIVATE KEY'), 'sealed at rest');

    const destination = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/destinations`, {
      name: 'Support',
      address: MAILBOX,
      serverId,
    });
    assert.equal(destination.status, 201, destination.raw);

    // A customer's message arrives (appended with a token of the same grant: Dovecot accepts it).
    const row = await h.store.servers.get(tenantId, serverId);
    assert.ok(row && h.oauth);
    const { accessToken, user } = await h.oauth.accessToken(row, 'imap');
    assert.equal(user, MAILBOX);
    const writer = new ImapFlow({
      host: dovecot.host,
      port: dovecot.port,
      secure: false,
      auth: { user: MAILBOX, accessToken },
      logger: false,
    });
    writer.on('error', () => undefined);
    await writer.connect();
    await writer.append('INBOX', rawMail({ to: MAILBOX, subject: 'via service account' }));
    await writer.logout();

    await h.inbound.start();
    const messages = await eventually(async () => {
      const res = await h.call<Obj>('GET', `/api/v1/tenants/${tenantId}/destinations/${destination.body.id}/messages`);
      return res.body.messages.length > 0 ? (res.body.messages as Obj[]) : undefined;
    }, 30_000);
    assert.equal(messages[0]?.subject, 'via service account');

    await h.outbound.start();
    const sent = await h.outbound.accept(tenantId, destination.body.id, { to: ['customer@example.net'], text: 'hi' });
    await eventually(async () => {
      const view = await h.outbound.get(tenantId, destination.body.id, sent.id);
      return view.status === 'sent' ? view : undefined;
    });
    assert.deepEqual(
      smtp.authentications.map((a) => [a.method, a.user, a.accepted]),
      [['XOAUTH2', MAILBOX, true]],
    );

    const status = await h.call<Obj>('GET', `/api/v1/tenants/${tenantId}/servers/${serverId}/oauth`);
    assert.equal(status.body.imap.status, 'COMPLETE');
    assert.equal(status.body.imap.flow, 'service-account');
    assert.equal(status.body.imap.account, `service account ${clientId}`);
    assert.equal(status.body.imap.mailbox, MAILBOX);
    const grants = idp.tokenRequests.filter((r) => r.grantType === 'urn:ietf:params:oauth:grant-type:jwt-bearer');
    assert.ok(grants.length >= 1 && grants.every((r) => r.error === undefined));
    assert.ok(grants.length <= 2, `the token is kept, not asked for each session (${grants.length})`);
  });

  it('says plainly that domain-wide delegation is not granted (unauthorized_client)', async () => {
    const clientId = 'undelegated@project.iam.gserviceaccount.com';
    const { keyFile, publicKey } = makeServiceAccountKeyFile(clientId);
    idp.addServiceAccount({ clientEmail: clientId, publicKey, delegatedScopes: [] });
    const server = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/servers`, {
      ...serverBody('Undelegated', clientId, keyFile, 'sales@workspace.test'),
      enabled: false,
    });
    assert.equal(server.status, 201, server.raw);
    const test = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/servers/${server.body.id}/oauth/test`, {
      purpose: 'imap',
    });
    assert.equal(test.status, 200, test.raw);
    assert.equal(test.body.status, 'ERROR');
    assert.match(test.body.error, /domain-wide delegation is not granted/);
    assert.match(test.body.error, /https:\/\/mail\.google\.com\//);
  });

  it('refuses a key that is not one, or that belongs to another service account, naming the field', async () => {
    const { keyFile } = makeServiceAccountKeyFile('other@project.iam.gserviceaccount.com');
    const other = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/servers`, {
      ...serverBody('Mismatch', 'mine@project.iam.gserviceaccount.com', keyFile, 'a@workspace.test'),
      enabled: false,
    });
    assert.equal(other.status, 400, other.raw);
    assert.equal(other.body.error.field, 'imap.auth.clientId');
    const garbage = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/servers`, {
      ...serverBody('Garbage', 'mine@project.iam.gserviceaccount.com', 'not a key', 'b@workspace.test'),
      enabled: false,
    });
    assert.equal(garbage.status, 400, garbage.raw);
    assert.equal(garbage.body.error.field, 'imap.auth.clientSecret');
    assert.doesNotMatch(garbage.raw, /not a key/, 'the secret is not repeated');
  });
});
