import assert from 'node:assert/strict';
import { isMailroomError } from '../../../src/shared/errors.js';
import { openOAuthFixture, type OAuthFixture } from './oauth-setup.js';

const USER = 'support@contoso.test';

describe('OAuth 2.0 device-code sign-in (fake identity provider, fake clock)', function () {
  this.timeout(30_000);
  let f: OAuthFixture;

  beforeEach(async () => {
    f = await openOAuthFixture();
  });
  afterEach(async function () {
    if (this.currentTest?.state === 'failed') process.stdout.write(`${f.logLines.slice(-20).join('\n')}\n`);
    await f.close();
  });

  const pendingPolls = (): number => f.idp.tokenRequests.filter((r) => r.error === 'authorization_pending').length;

  it('answers a Get Code cancelled before the provider issued its code (by another Get Code) instead of hanging', async () => {
    const server = await f.addServer('Main', USER, { clientId: 'public-client' });
    // The provider is slow to issue codes: the first Get Code is surely still waiting for its
    // code when the second one comes (each reads the database first: unheld, either could win).
    const hold = f.idp.holdDeviceCodes();
    const until = async (ok: () => boolean, what: string): Promise<void> => {
      for (let i = 0; i < 500 && !ok(); i += 1) await new Promise((resolve) => setTimeout(resolve, 10));
      assert.ok(ok(), what);
    };
    const first = f.oauth.startDeviceCode(f.tenantId, server.id, 'imap');
    const firstOutcome = first.then(
      () => 'a code',
      (err: unknown) => (isMailroomError(err, 'CONFLICT') ? err.message : String(err)),
    );
    await until(() => hold.waiting() === 1, 'the first Get Code has asked the provider');
    const second = f.oauth.startDeviceCode(f.tenantId, server.id, 'imap');
    await until(() => hold.waiting() === 2, 'the second Get Code has asked the provider (replacing the first)');
    // The provider answers both now: the first code comes for a Get Code already replaced.
    hold.release();
    assert.match(await firstOutcome, /cancelled before the identity provider issued a code.*ask for a code again/);
    const code = await second;
    await f.clock.nextTimer();
    assert.ok(f.idp.approve(code.userCode, USER));
    await f.clock.fireNext();
    assert.equal((await f.oauth.flows.settled(server.id, 'imap'))?.status, 'COMPLETE', 'the second one signs in');
  });

  it('goes INCOMPLETE → PENDING → COMPLETE, polling at the interval the provider asks for', async () => {
    const server = await f.addServer('Main', USER, { clientId: 'public-client' });
    assert.equal((await f.oauth.status(f.tenantId, server.id)).imap?.status, 'INCOMPLETE');

    const code = await f.oauth.startDeviceCode(f.tenantId, server.id, 'imap');
    assert.match(code.userCode, /^[A-Z]{9}$/);
    assert.equal(code.verificationUri, `${f.idp.url}/devicelogin`);
    assert.equal(code.expiresIn, 900);
    assert.match(code.message, new RegExp(code.userCode));
    const [issued] = f.idp.pendingCodes();
    assert.equal(issued?.directoryId, 'contoso-directory', 'the directory id is in the authority, not /common');
    assert.ok(issued?.scopes.includes('https://outlook.office.com/IMAP.AccessAsUser.All'));
    assert.ok(issued?.scopes.includes('https://outlook.office.com/SMTP.Send'));
    assert.ok(issued?.scopes.includes('offline_access'));

    assert.equal(await f.clock.nextTimer(), 5_000, 'waits the interval after authorization_pending');
    assert.equal(pendingPolls(), 1);
    const status = await f.oauth.status(f.tenantId, server.id);
    assert.equal(status.imap?.status, 'PENDING');
    assert.equal(status.smtp?.status, 'PENDING', 'SMTP with mode imap shares the IMAP sign-in');
    assert.equal(status.smtp?.sharesImapSignIn, true);

    f.clock.advance(4_999);
    assert.equal(pendingPolls(), 1, 'no poll before the interval');
    await f.clock.fireNext();
    assert.equal(await f.clock.nextTimer(), 5_000);
    assert.equal(pendingPolls(), 2);

    assert.ok(f.idp.approve(code.userCode, USER));
    await f.clock.fireNext();
    const done = await f.oauth.flows.settled(server.id, 'imap');
    assert.equal(done?.status, 'COMPLETE');
    const after = await f.oauth.status(f.tenantId, server.id);
    assert.equal(after.imap?.status, 'COMPLETE');
    assert.equal(after.imap?.account, USER);
    assert.equal(after.imap?.error, null);
    assert.ok(after.imap?.expiresAt);

    const token = await f.oauth.accessToken(await f.row(server.id), 'imap');
    assert.equal(token.user, USER);
    assert.ok(f.idp.verifyAccessToken(USER, token.accessToken));
    const smtp = await f.oauth.accessToken(await f.row(server.id), 'smtp');
    assert.ok(f.idp.verifyAccessToken(USER, smtp.accessToken));
  });

  it('widens the polling interval by five seconds after slow_down', async () => {
    const server = await f.addServer('Main', USER, { clientId: 'public-client' });
    f.idp.slowDown(1);
    const code = await f.oauth.startDeviceCode(f.tenantId, server.id, 'imap');
    assert.equal(await f.clock.nextTimer(), 10_000);
    assert.equal(f.idp.tokenRequests.at(-1)?.error, 'slow_down');
    await f.clock.fireNext();
    assert.equal(await f.clock.nextTimer(), 10_000, 'the wider interval stays');
    assert.equal(f.idp.tokenRequests.at(-1)?.error, 'authorization_pending');
    f.idp.approve(code.userCode, USER);
    await f.clock.fireNext();
    assert.equal((await f.oauth.flows.settled(server.id, 'imap'))?.status, 'COMPLETE');
  });

  it('gives EXPIRED when nobody enters the code within 900 seconds', async () => {
    const server = await f.addServer('Main', USER, { clientId: 'public-client' });
    await f.oauth.startDeviceCode(f.tenantId, server.id, 'imap');
    const settled = f.oauth.flows.settled(server.id, 'imap');
    let waited = 0;
    for (;;) {
      const next = await Promise.race([settled.then(() => undefined), f.clock.nextTimer()]);
      if (next === undefined) break;
      waited += await f.clock.fireNext();
    }
    const done = await settled;
    assert.equal(done?.status, 'EXPIRED');
    assert.equal(waited, 900_000);
    const status = await f.oauth.status(f.tenantId, server.id);
    assert.equal(status.imap?.status, 'EXPIRED');
    assert.match(status.imap?.error ?? '', /not entered in time/);
    assert.ok(f.idp.tokenRequests.length <= 181, 'polled no faster than every 5 s');
  });

  it('gives EXPIRED when the provider answers expired_token', async () => {
    const server = await f.addServer('Main', USER, { clientId: 'public-client' });
    const code = await f.oauth.startDeviceCode(f.tenantId, server.id, 'imap');
    await f.clock.nextTimer();
    f.idp.expireDeviceCode(code.userCode);
    await f.clock.fireNext();
    assert.equal((await f.oauth.flows.settled(server.id, 'imap'))?.status, 'EXPIRED');
  });

  it('cancels the sign-in in progress when a new code is requested', async () => {
    const server = await f.addServer('Main', USER, { clientId: 'public-client' });
    const first = await f.oauth.startDeviceCode(f.tenantId, server.id, 'imap');
    await f.clock.nextTimer();
    const second = await f.oauth.startDeviceCode(f.tenantId, server.id, 'imap');
    assert.notEqual(first.userCode, second.userCode);
    f.idp.approve(first.userCode, 'intruder@contoso.test');
    await f.clock.nextTimer();
    assert.deepEqual(f.clock.pending, [5_000], 'only the new flow polls');
    await f.clock.fireNext();
    await f.clock.nextTimer();
    assert.equal(f.oauth.flows.snapshot(server.id, 'imap')?.status, 'PENDING');
    assert.equal(f.idp.pendingCodes().find((c) => c.userCode === first.userCode)?.state, 'approved', 'never redeemed');
    f.idp.approve(second.userCode, USER);
    await f.clock.fireNext();
    await f.oauth.flows.settled(server.id, 'imap');
    assert.equal((await f.oauth.status(f.tenantId, server.id)).imap?.account, USER);
  });

  async function signIn(serverId: string, user: string): Promise<void> {
    const code = await f.oauth.startDeviceCode(f.tenantId, serverId, 'imap');
    await f.clock.nextTimer();
    f.idp.approve(code.userCode, user);
    await f.clock.fireNext();
    assert.equal((await f.oauth.flows.settled(serverId, 'imap'))?.status, 'COMPLETE');
  }

  it('refreshes a refused token, saves the rotated refresh token, and keeps working after a restart', async () => {
    const server = await f.addServer('Main', USER, { clientId: 'public-client' });
    await signIn(server.id, USER);
    const row = await f.row(server.id);
    const first = await f.oauth.accessToken(row, 'imap');
    assert.equal((await f.oauth.accessToken(row, 'imap')).accessToken, first.accessToken, 'cached until near expiry');
    const sealedBefore = (await f.store.oauthGrants.get(server.id, 'imap'))?.cacheSealed;

    f.idp.expireAccessTokens();
    assert.equal(f.idp.verifyAccessToken(USER, first.accessToken), false);
    const refreshed = await f.oauth.accessToken(row, 'imap', { forceRefresh: true });
    assert.notEqual(refreshed.accessToken, first.accessToken);
    assert.ok(f.idp.verifyAccessToken(USER, refreshed.accessToken));
    const sealedAfter = (await f.store.oauthGrants.get(server.id, 'imap'))?.cacheSealed;
    assert.notEqual(sealedAfter, sealedBefore, 'the rotated refresh token was saved');

    // A new process: only the database. The spent refresh token would fail; the saved one works.
    const restarted = f.restart();
    const again = await restarted.accessToken(row, 'imap', { forceRefresh: true });
    assert.ok(f.idp.verifyAccessToken(USER, again.accessToken));
    assert.equal(f.idp.tokenRequests.filter((r) => r.grantType === 'refresh_token' && r.error).length, 0);
  });

  it('turns invalid_grant into REAUTH_REQUIRED for that account only, until a new sign-in', async () => {
    const revoked = await f.addServer('Revoked', USER, { clientId: 'public-client' });
    const other = await f.addServer('Other', 'sales@contoso.test', { clientId: 'public-client' });
    await signIn(revoked.id, USER);
    await signIn(other.id, 'sales@contoso.test');

    f.idp.revoke(USER);
    await assert.rejects(
      f.oauth.accessToken(await f.row(revoked.id), 'imap', { forceRefresh: true }),
      (err: unknown) =>
        isMailroomError(err, 'CREDENTIALS_UNAVAILABLE') &&
        err.details?.reason === 'REAUTH_REQUIRED' &&
        /sign in again/.test(err.message),
    );
    const status = await f.oauth.status(f.tenantId, revoked.id);
    assert.equal(status.imap?.status, 'REAUTH_REQUIRED');
    assert.equal(status.smtp?.status, 'REAUTH_REQUIRED');
    const requestsBefore = f.idp.tokenRequests.length;
    await assert.rejects(f.oauth.accessToken(await f.row(revoked.id), 'imap'), /sign in again/);
    assert.equal(f.idp.tokenRequests.length, requestsBefore, 'no more refresh attempts until someone signs in');

    const fine = await f.oauth.accessToken(await f.row(other.id), 'imap', { forceRefresh: true });
    assert.ok(f.idp.verifyAccessToken('sales@contoso.test', fine.accessToken), 'the other account carries on');

    await signIn(revoked.id, USER);
    const back = await f.oauth.accessToken(await f.row(revoked.id), 'imap');
    assert.ok(f.idp.verifyAccessToken(USER, back.accessToken));
  });
});
