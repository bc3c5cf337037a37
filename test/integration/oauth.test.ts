import assert from 'node:assert/strict';
import { CredentialService } from '../../src/auth/credentials.js';
import { OAuthService } from '../../src/auth/oauth/index.js';
import { startFakeIdp, type FakeIdp } from '../../src/harness/fake-idp/index.js';
import { startFakeImap, type FakeImapServer } from '../../src/harness/fake-imap/index.js';
import { FAST_INBOUND, forEachBackend, openApiHarness, type ApiHarness } from '../support/api-harness.js';
import { capturingLogger } from '../support/log-capture.js';
import { eventually, rawMail } from '../support/mail.js';
import { deviceCodeAuth } from '../support/fixtures.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON answers in tests

const USER = 'support@contoso.test';

forEachBackend('OAuth 2.0 device code through the API, then IMAP XOAUTH2', (kind) => {
  let h: ApiHarness;
  let idp: FakeIdp;
  let imap: FakeImapServer;
  let tenantId: string;

  beforeEach(async () => {
    idp = await startFakeIdp({ pollIntervalSeconds: 1 });
    h = await openApiHarness(kind, FAST_INBOUND, {}, {}, { identityProviderCa: idp.ca });
    imap = await startFakeImap({ users: [{ user: USER }], verifyAccessToken: idp.verifyAccessToken });
    tenantId = (await h.call<Obj>('POST', '/api/v1/tenants', { name: 'OAuth' })).body.id;
  });
  afterEach(async function () {
    if (this.currentTest?.state === 'failed') {
      process.stdout.write(`--- engine log of the failed test:\n${h.logLines.slice(-40).join('\n')}\n`);
    }
    await h.close();
    await imap.close();
    await idp.close();
  });

  it('signs in with a device code, ingests over XOAUTH2, and keeps its tokens across a restart', async () => {
    const server = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/servers`, {
      name: 'Office 365',
      imap: {
        host: '127.0.0.1',
        port: imap.port,
        secure: false,
        user: USER,
        auth: deviceCodeAuth(idp.url),
      },
      smtp: { host: '127.0.0.1', port: 2525, auth: { mode: 'imap' } },
    });
    assert.equal(server.status, 201, server.raw);
    const serverId: string = server.body.id;
    const oauthUrl = `/api/v1/tenants/${tenantId}/servers/${serverId}/oauth`;
    const destination = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/destinations`, {
      name: 'Support',
      address: USER,
      serverId,
    });
    assert.equal(destination.status, 201, destination.raw);

    const before = await h.call<Obj>('GET', oauthUrl);
    assert.equal(before.status, 200, before.raw);
    assert.equal(before.body.imap.status, 'INCOMPLETE');
    assert.equal(before.body.smtp.sharesImapSignIn, true);

    const code = await h.call<Obj>('POST', `${oauthUrl}/device-code`, { purpose: 'imap' });
    assert.equal(code.status, 200, code.raw);
    assert.deepEqual(Object.keys(code.body).sort(), ['expiresIn', 'message', 'purpose', 'userCode', 'verificationUri']);
    assert.equal(code.body.expiresIn, 900);
    assert.equal((await h.call<Obj>('GET', oauthUrl)).body.imap.status, 'PENDING');

    // Mail waits in the mailbox; the watcher cannot log in until someone signs in.
    imap.append(USER, 'INBOX', rawMail({ to: USER, subject: 'over oauth' }));
    await h.inbound.start();
    await eventually(async () => (h.inbound.status(serverId).state === 'authError' ? true : undefined));

    assert.ok(idp.approve(code.body.userCode, USER));
    const complete = await eventually(async () => {
      const res = await h.call<Obj>('GET', oauthUrl);
      return res.body.imap.status === 'COMPLETE' ? res.body : undefined;
    });
    assert.equal(complete.imap.account, USER);
    assert.equal(complete.smtp.status, 'COMPLETE');

    const messages = await eventually(async () => {
      const res = await h.call<Obj>('GET', `/api/v1/tenants/${tenantId}/destinations/${destination.body.id}/messages`);
      return res.body.messages.length > 0 ? (res.body.messages as Obj[]) : undefined;
    }, 15_000);
    assert.equal(messages[0]?.subject, 'over oauth');

    // Restart: a new OAuth service and credential service over the same database, no new sign-in.
    await h.inbound.service.stop();
    const deviceGrants = idp.tokenRequests.filter((r) => r.grantType.endsWith('device_code') && !r.error).length;
    const { logger } = capturingLogger('silent');
    const restarted = new OAuthService(h.store, h.sealer, logger, { identityProviderCa: idp.ca });
    const credentials = new CredentialService(h.sealer, restarted);
    const row = await h.store.servers.get(tenantId, serverId);
    assert.ok(row);
    idp.expireAccessTokens();
    const login = await credentials.imapLogin(row, { forceRefresh: true });
    assert.ok('accessToken' in login && idp.verifyAccessToken(USER, login.accessToken));
    const smtp = await credentials.smtpLogin(row);
    assert.ok(smtp && 'accessToken' in smtp && idp.verifyAccessToken(USER, smtp.accessToken));
    assert.equal(
      idp.tokenRequests.filter((r) => r.grantType.endsWith('device_code') && !r.error).length,
      deviceGrants,
      'no new sign-in',
    );
    await restarted.stop();

    // Canary: no issued token in the API answers, the database or the logs.
    const shown =
      (await h.call<Obj>('GET', oauthUrl)).raw +
      (await h.call<Obj>('GET', `/api/v1/tenants/${tenantId}/servers/${serverId}`)).raw;
    const dump = JSON.stringify(await h.store.query('SELECT * FROM oauth_grants'));
    const logs = h.logLines.join('\n');
    for (const token of idp.issuedTokens) {
      assert.ok(!shown.includes(token) && !dump.includes(token) && !logs.includes(token), 'a token leaked');
    }
    // The sign-in's log lines name the server as well as its id.
    const signedIn = h.logLines.map((l) => JSON.parse(l) as Obj).find((l) => l.msg === 'OAuth 2.0 sign-in complete');
    assert.equal(signedIn?.serverName, 'Office 365');
  });

  it('answers 409 for a server side without a device-code flow, and 404 for another tenant', async () => {
    const server = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/servers`, {
      name: 'Password',
      imap: { host: '127.0.0.1', port: imap.port, user: 'p@contoso.test', auth: { method: 'password', password: 'x' } },
      smtp: { host: '127.0.0.1', port: 2525, auth: { mode: 'none' } },
    });
    const url = `/api/v1/tenants/${tenantId}/servers/${server.body.id}/oauth`;
    const res = await h.call<Obj>('POST', `${url}/device-code`, { purpose: 'imap' });
    assert.equal(res.status, 409, res.raw);
    assert.equal(res.body.error.code, 'OAUTH_NOT_CONFIGURED');
    assert.deepEqual((await h.call<Obj>('GET', url)).body, { imap: null, smtp: null });
    const bad = await h.call<Obj>('POST', `${url}/device-code`, { purpose: 'pop3' });
    assert.equal(bad.status, 400);
    const otherTenant = (await h.call<Obj>('POST', '/api/v1/tenants', { name: 'Other' })).body.id;
    const elsewhere = await h.call<Obj>('GET', url.replace(tenantId, otherTenant));
    assert.equal(elsewhere.status, 404, elsewhere.raw);
    assert.equal(elsewhere.body.error.code, 'SERVER_NOT_FOUND');
  });

  it('asks for the scopes of a custom Office 365 server (serverUrl), the SMTP side inheriting it', async () => {
    const server = await h.call<Obj>('POST', `/api/v1/tenants/${tenantId}/servers`, {
      name: 'Sovereign',
      imap: {
        host: '127.0.0.1',
        port: imap.port,
        secure: false,
        user: USER,
        auth: deviceCodeAuth(idp.url, { serverUrl: 'https://outlook.office365.us/' }),
      },
      smtp: { host: '127.0.0.1', port: 2525, auth: { mode: 'custom', method: 'oauth2', user: USER } },
    });
    assert.equal(server.status, 201, server.raw);
    assert.equal(server.body.imap.auth.oauth2.serverUrl, 'https://outlook.office365.us');
    assert.equal(server.body.smtp.auth.oauth2.serverUrl, 'https://outlook.office365.us', 'inherited');
    const url = `/api/v1/tenants/${tenantId}/servers/${server.body.id}/oauth`;
    const code = await h.call<Obj>('POST', `${url}/device-code`, { purpose: 'smtp' });
    assert.equal(code.status, 200, code.raw);
    const pending = idp.pendingCodes().find((c) => c.userCode === code.body.userCode);
    assert.ok(pending, 'the identity provider issued the code');
    for (const scope of ['IMAP.AccessAsUser.All', 'SMTP.Send'])
      assert.ok(pending.scopes.includes(`https://outlook.office365.us/${scope}`), pending.scopes.join(' '));
    assert.ok(!pending.scopes.some((s) => s.includes('outlook.office.com')), pending.scopes.join(' '));
    const bad = await h.call<Obj>('PATCH', `/api/v1/tenants/${tenantId}/servers/${server.body.id}`, {
      imap: { auth: { method: 'oauth2', serverUrl: 'http://outlook.example' } },
    });
    assert.equal(bad.status, 400, bad.raw);
    assert.equal(bad.body.error.field, 'imap.auth.serverUrl');
  });
});
