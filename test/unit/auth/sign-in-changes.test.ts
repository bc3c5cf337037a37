import assert from 'node:assert/strict';
import { endVoidedSignIns } from '../../../src/main.js';
import { isMailroomError } from '../../../src/shared/errors.js';
import { APP_CLIENT_ID, CLIENT_SECRET, openOAuthFixture, type OAuthFixture } from './oauth-setup.js';

const USER = 'support@contoso.test';

describe('OAuth 2.0 sign-ins when a server changes or goes (fake identity provider, fake clock)', function () {
  this.timeout(30_000);
  let f: OAuthFixture;

  beforeEach(async () => {
    f = await openOAuthFixture();
    // The composition root's wiring: voided sign-ins end in this process too.
    endVoidedSignIns(f.accounts, f.oauth, f.logger);
  });
  afterEach(async function () {
    if (this.currentTest?.state === 'failed') process.stdout.write(`${f.logLines.slice(-20).join('\n')}\n`);
    await f.close();
  });

  async function signIn(serverId: string, user: string): Promise<void> {
    const code = await f.oauth.startDeviceCode(f.tenantId, serverId, 'imap');
    await f.clock.nextTimer();
    f.idp.approve(code.userCode, user);
    await f.clock.fireNext();
    assert.equal((await f.oauth.flows.settled(serverId, 'imap'))?.status, 'COMPLETE');
  }

  async function imapStatus(serverId: string): Promise<string | undefined> {
    return (await f.oauth.status(f.tenantId, serverId)).imap?.status;
  }

  const notSignedIn = (err: unknown): boolean =>
    isMailroomError(err, 'CREDENTIALS_UNAVAILABLE') && err.details?.reason === 'INCOMPLETE';

  it('keeps the sign-in on unrelated edits, and voids it when the IMAP endpoint or user name changes', async () => {
    const server = await f.addServer('Main', USER, { clientId: 'public-client' });
    await signIn(server.id, USER);
    await f.accounts.servers.update(f.tenantId, server.id, { name: 'Renamed', enabled: false });
    assert.equal(await imapStatus(server.id), 'COMPLETE', 'same endpoint and user: the sign-in stays');
    await f.accounts.servers.update(f.tenantId, server.id, { imap: { port: 1143 } });
    assert.equal(await imapStatus(server.id), 'INCOMPLETE', 'its tokens go to no other port');
    await signIn(server.id, USER);

    await f.accounts.servers.update(f.tenantId, server.id, { imap: { host: 'imap.elsewhere.test' } });
    assert.equal(await imapStatus(server.id), 'INCOMPLETE');
    assert.equal(await f.store.oauthGrants.get(server.id, 'imap'), null, 'the token cache is gone');
    await assert.rejects(f.oauth.accessToken(await f.row(server.id), 'imap'), notSignedIn);

    await f.accounts.servers.update(f.tenantId, server.id, { imap: { host: '127.0.0.1' } });
    await signIn(server.id, USER);
    await f.accounts.servers.update(f.tenantId, server.id, { imap: { user: 'other@contoso.test' } });
    assert.equal(await imapStatus(server.id), 'INCOMPLETE', 'another user name');
  });

  it('voids the IMAP sign-in that SMTP uses (mode imap) when the SMTP host changes', async () => {
    const server = await f.addServer('Main', USER, { clientId: 'public-client' });
    await signIn(server.id, USER);
    await f.accounts.servers.update(f.tenantId, server.id, { smtp: { rateLimitPerHour: 10 } });
    assert.equal(await imapStatus(server.id), 'COMPLETE', 'the same SMTP endpoint');
    await f.accounts.servers.update(f.tenantId, server.id, { smtp: { port: 25 } });
    assert.equal(await imapStatus(server.id), 'INCOMPLETE', 'another port of the same host');
    await signIn(server.id, USER);
    await f.accounts.servers.update(f.tenantId, server.id, { smtp: { auth: { mode: 'none' } } });
    assert.equal(await imapStatus(server.id), 'COMPLETE', 'SMTP no longer using it: the IMAP sign-in stays');
    await f.accounts.servers.update(f.tenantId, server.id, { smtp: { auth: { mode: 'imap' } } });
    assert.equal(await imapStatus(server.id), 'INCOMPLETE', 'SMTP using it again: to be signed in again');
    await signIn(server.id, USER);
    await f.accounts.servers.update(f.tenantId, server.id, { smtp: { host: 'smtp.elsewhere.test' } });
    const status = await f.oauth.status(f.tenantId, server.id);
    assert.equal(status.imap?.status, 'INCOMPLETE');
    assert.equal(status.smtp?.status, 'INCOMPLETE');
    await assert.rejects(f.oauth.accessToken(await f.row(server.id), 'smtp'), notSignedIn);
  });

  it('does not count a sign-in or refresh saved for the old account after the change (another instance)', async () => {
    const server = await f.addServer('Main', USER, { clientId: 'public-client' });
    await signIn(server.id, USER);
    const before = await f.store.oauthGrants.get(server.id, 'imap');
    assert.ok(before?.cacheSealed);
    await f.accounts.servers.update(f.tenantId, server.id, { imap: { host: 'imap.elsewhere.test' } });
    // Another instance, whose sign-in (or token refresh) was under way, saves it now.
    const key = { serverId: server.id, tenantId: f.tenantId, purpose: 'imap' as const, appKey: before.appKey };
    await f.store.oauthGrants.saveCache(key, before.cacheSealed);
    await f.store.oauthGrants.setStatus(key, { status: 'COMPLETE', account: USER, error: null });
    assert.equal(await imapStatus(server.id), 'INCOMPLETE', 'saved for the old place: void');
    await assert.rejects(f.oauth.accessToken(await f.row(server.id), 'imap'), notSignedIn);
  });

  it('cancels a pending sign-in whose account changed: approving the old code saves nothing', async () => {
    const server = await f.addServer('Main', USER, { clientId: 'public-client' });
    const code = await f.oauth.startDeviceCode(f.tenantId, server.id, 'imap');
    await f.clock.nextTimer();
    await f.accounts.servers.update(f.tenantId, server.id, { imap: { user: 'other@contoso.test' } });
    assert.equal(f.oauth.flows.snapshot(server.id, 'imap'), undefined);
    assert.deepEqual(f.clock.pending, [], 'no more polling');
    f.idp.approve(code.userCode, USER);
    assert.equal(await imapStatus(server.id), 'INCOMPLETE');
  });

  it('asks for the client secret again when the account moves (client credentials)', async () => {
    const server = await f.addServer('App', USER, {
      clientId: APP_CLIENT_ID,
      flow: 'client-credentials',
      clientSecret: CLIENT_SECRET,
    });
    await f.oauth.accessToken(server, 'imap');
    assert.equal(await imapStatus(server.id), 'COMPLETE');
    for (const change of [{ imap: { user: 'other@contoso.test' } }, { smtp: { host: 'smtp.elsewhere.test' } }]) {
      await assert.rejects(
        f.accounts.servers.update(f.tenantId, server.id, change),
        (err: unknown) =>
          isMailroomError(err, 'VALIDATION_FAILED') &&
          err.field === 'imap.auth.clientSecret' &&
          /required for the client-credentials flow again: /.test(err.message),
        JSON.stringify(change),
      );
    }
    await f.accounts.servers.update(f.tenantId, server.id, {
      imap: { user: 'other@contoso.test', auth: { method: 'oauth2', clientSecret: CLIENT_SECRET } },
    });
    assert.equal(await imapStatus(server.id), 'INCOMPLETE', 'the app’s status was for the old mailbox');
    const token = await f.oauth.accessToken(await f.row(server.id), 'imap');
    assert.equal(token.user, 'other@contoso.test');
  });

  it('cancels the sign-in in progress and forgets the token applications of a deleted server', async () => {
    const signedIn = await f.addServer('Signed in', 'sales@contoso.test', { clientId: 'public-client' });
    await signIn(signedIn.id, 'sales@contoso.test');
    await f.oauth.accessToken(await f.row(signedIn.id), 'imap');
    const pending = await f.addServer('Pending', USER, { clientId: 'public-client' });
    const code = await f.oauth.startDeviceCode(f.tenantId, pending.id, 'imap');
    await f.clock.nextTimer();

    await f.accounts.servers.delete(f.tenantId, pending.id);
    await f.accounts.servers.delete(f.tenantId, signedIn.id);
    assert.equal(f.oauth.flows.snapshot(pending.id, 'imap'), undefined);
    assert.deepEqual(f.clock.pending, [], 'no more polling for a server that is gone');
    f.idp.approve(code.userCode, USER);
    // The token applications (and any client secret they hold) of deleted servers are dropped.
    const tokens = (f.oauth as unknown as { tokens: { publicApps: Map<string, unknown> } }).tokens;
    assert.equal(tokens.publicApps.size, 0);
    assert.deepEqual(
      f.logLines.filter((l) => l.includes('"level":50')),
      [],
      'no error (such as a grant saved for a deleted server)',
    );
  });
});
