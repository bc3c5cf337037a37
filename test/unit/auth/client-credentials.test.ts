import assert from 'node:assert/strict';
import { CredentialService } from '../../../src/auth/credentials.js';
import { isMailroomError } from '../../../src/shared/errors.js';
import { APP_CLIENT_ID, CLIENT_SECRET, openOAuthFixture, type OAuthFixture } from './oauth-setup.js';

const MAILBOX = 'shared@contoso.test';

describe('OAuth 2.0 client credentials (fake identity provider)', function () {
  this.timeout(30_000);
  let f: OAuthFixture;

  beforeEach(async () => {
    f = await openOAuthFixture();
  });
  afterEach(async () => {
    await f.close();
  });

  it('gets an app-only token with the sealed client secret', async () => {
    const server = await f.addServer('App', MAILBOX, {
      clientId: APP_CLIENT_ID,
      flow: 'client-credentials',
      clientSecret: CLIENT_SECRET,
    });
    const credentials = new CredentialService(f.sealer, f.oauth);
    const login = await credentials.imapLogin(server);
    assert.ok('accessToken' in login);
    assert.equal(login.user, MAILBOX);
    assert.ok(f.idp.verifyAccessToken(MAILBOX, login.accessToken));
    assert.equal(f.idp.isValidAccessToken(login.accessToken), `app:${APP_CLIENT_ID}`);
    const smtp = await credentials.smtpLogin(server);
    assert.ok(smtp && 'accessToken' in smtp && f.idp.verifyAccessToken(MAILBOX, smtp.accessToken));
    const status = await f.oauth.status(f.tenantId, server.id);
    assert.equal(status.imap?.status, 'COMPLETE');
    assert.equal(status.imap?.account, `app ${APP_CLIENT_ID}`);
    await assert.rejects(f.oauth.startDeviceCode(f.tenantId, server.id, 'imap'), (err: unknown) =>
      isMailroomError(err, 'OAUTH_NOT_CONFIGURED'),
    );
  });

  it('says clearly that the client secret is wrong', async () => {
    const server = await f.addServer('App', MAILBOX, {
      clientId: APP_CLIENT_ID,
      flow: 'client-credentials',
      clientSecret: 'not-the-secret',
    });
    await assert.rejects(
      new CredentialService(f.sealer, f.oauth).imapLogin(server),
      (err: unknown) => isMailroomError(err, 'CREDENTIALS_UNAVAILABLE') && /client secret is wrong/.test(err.message),
    );
    const status = await f.oauth.test(f.tenantId, server.id, 'imap');
    assert.equal(status?.status, 'ERROR');
    assert.match(status?.error ?? '', /client secret is wrong \(AADSTS7000215\)/);
  });

  it('says which setting is wrong for an unknown app', async () => {
    const server = await f.addServer('App', MAILBOX, {
      clientId: 'not-registered',
      flow: 'client-credentials',
      clientSecret: CLIENT_SECRET,
    });
    await assert.rejects(f.oauth.accessToken(server, 'imap'), /client\) ID is not registered/);
  });

  it('never shows the client secret or a token in clear: database, logs, status (canary)', async () => {
    const app = await f.addServer('App', MAILBOX, {
      clientId: APP_CLIENT_ID,
      flow: 'client-credentials',
      clientSecret: CLIENT_SECRET,
    });
    const user = await f.addServer('User', 'agent@contoso.test', { clientId: 'public-client' });
    await f.oauth.accessToken(app, 'imap');
    const code = await f.oauth.startDeviceCode(f.tenantId, user.id, 'imap');
    await f.clock.nextTimer();
    f.idp.approve(code.userCode, 'agent@contoso.test');
    await f.clock.fireNext();
    await f.oauth.flows.settled(user.id, 'imap');
    await f.oauth.accessToken(await f.row(user.id), 'imap', { forceRefresh: true });

    const tables = ['email_servers', 'oauth_grants'];
    let dump = '';
    for (const table of tables) dump += JSON.stringify(await f.store.query(`SELECT * FROM ${table}`));
    const shown = JSON.stringify([
      await f.oauth.status(f.tenantId, app.id),
      await f.oauth.status(f.tenantId, user.id),
      await f.accounts.servers.get(f.tenantId, app.id),
    ]);
    const logs = f.logLines.join('\n');
    assert.ok(f.idp.issuedTokens.length >= 4);
    for (const secret of [CLIENT_SECRET, ...f.idp.issuedTokens]) {
      assert.ok(!dump.includes(secret), 'database holds a secret in clear');
      assert.ok(!shown.includes(secret), 'status or view shows a secret');
      assert.ok(!logs.includes(secret), 'logs hold a secret');
    }
    assert.match(dump, /mr1\./, 'the token cache is sealed');
  });
});
