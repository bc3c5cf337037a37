import assert from 'node:assert/strict';
import { startFakeIdp, type FakeIdp } from '../../src/harness/fake-idp/index.js';
import { startFakeImap, type FakeImapServer } from '../../src/harness/fake-imap/index.js';
import { startSmtpHarness, type SmtpHarness } from '../../src/harness/smtp-harness.js';
import { FAST_INBOUND, openApiHarness, type ApiHarness } from '../support/api-harness.js';
import { deviceCodeAuth } from '../support/fixtures.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON answers in tests

const USER = 'support@contoso.test';

/**
 * "Test connection" of a server signing in with OAuth 2.0: a refused access token is refreshed
 * once and tried again (as the watcher and the queue do), and a refusal of a fresh token is worded
 * as an OAuth 2.0 failure, not as a wrong password.
 */
describe('connection test with OAuth 2.0 (fake identity provider, XOAUTH2 on both sides) [pglite]', function () {
  this.timeout(60_000);
  let h: ApiHarness;
  let idp: FakeIdp;
  let imap: FakeImapServer;
  let smtp: SmtpHarness;
  let tenantId: string;
  /** The mailbox servers take the identity provider's tokens only while this is true. */
  let mailboxAllowsOAuth = true;

  beforeEach(async () => {
    mailboxAllowsOAuth = true;
    idp = await startFakeIdp({ pollIntervalSeconds: 1 });
    const verify = (user: string, token: string): boolean => mailboxAllowsOAuth && idp.verifyAccessToken(user, token);
    h = await openApiHarness('pglite', FAST_INBOUND, {}, {}, { identityProviderCa: idp.ca });
    imap = await startFakeImap({ users: [{ user: USER }], verifyAccessToken: verify });
    smtp = await startSmtpHarness({ verifyAccessToken: verify });
    tenantId = (await h.call<Obj>('POST', '/api/v1/tenants', { name: 'OAuth' })).body.id;
  });
  afterEach(async () => {
    await h.close();
    await imap.close();
    await smtp.close();
    await idp.close();
  });

  async function signedInServer(): Promise<string> {
    const created = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/servers`, {
      name: 'Office 365',
      enabled: false,
      imap: { host: '127.0.0.1', port: imap.port, secure: false, user: USER, auth: deviceCodeAuth(idp.url) },
      smtp: { host: '127.0.0.1', port: smtp.port, auth: { mode: 'imap' } },
    });
    assert.equal(created.status, 201, created.raw);
    const serverId = created.body.id as string;
    const oauthUrl = `/api/v1/tenants/${tenantId}/servers/${serverId}/oauth`;
    const code = await h.call<Obj>('POST', `${oauthUrl}/device-code`, { purpose: 'imap' });
    assert.equal(code.status, 200, code.raw);
    assert.ok(idp.approve(code.body.userCode, USER));
    for (let i = 0; i < 200; i += 1) {
      if ((await h.call<Obj>('GET', oauthUrl)).body.imap.status === 'COMPLETE') return serverId;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error('the sign-in did not complete');
  }

  const test = (serverId: string) => h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/servers/${serverId}/test`, {});

  it('refreshes a refused access token once and logs in with the fresh one, on both sides', async () => {
    const serverId = await signedInServer();
    // The tokens cached by the engine are no longer taken (revoked at the server, or expired early).
    idp.expireAccessTokens();
    const res = await test(serverId);
    assert.equal(res.status, 200, res.raw);
    assert.equal(res.body.imap.ok, true, res.raw);
    assert.match(res.body.imap.detail, /logged in as support@contoso\.test with an OAuth 2\.0 access token/);
    assert.equal(res.body.smtp.ok, true, res.raw);
    assert.match(res.body.smtp.detail, /with an OAuth 2\.0 access token/);
  });

  it('words a refusal of a fresh access token as an OAuth 2.0 failure, not a password one', async () => {
    const serverId = await signedInServer();
    mailboxAllowsOAuth = false;
    const res = await test(serverId);
    assert.equal(res.status, 200, res.raw);
    for (const side of ['imap', 'smtp'] as const) {
      assert.equal(res.body[side].ok, false, res.raw);
      assert.match(
        res.body[side].detail,
        /refused the OAuth 2\.0 access token for support@contoso\.test, also a fresh one/,
      );
      assert.doesNotMatch(res.body[side].detail, /password/);
    }
  });
});
