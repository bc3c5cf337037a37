import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createAccounts } from '../../src/accounts/index.js';
import { AddressPolicy } from '../../src/shared/address-policy.js'; // the test identity provider is on 127.0.0.1
import { CredentialService } from '../../src/auth/credentials.js';
import { OAuthGrants } from '../../src/auth/oauth/grants.js';
import { HttpClient } from '../../src/auth/oauth/http-client.js';
import { OAuthService } from '../../src/auth/oauth/index.js';
import { MsalApps } from '../../src/auth/oauth/msal-apps.js';
import { appKeyOf } from '../../src/auth/oauth/settings.js';
import { TokenProvider } from '../../src/auth/oauth/token-provider.js';
import { startFakeIdp, type FakeIdp, type FakeIdpOptions } from '../../src/harness/fake-idp/index.js';
import type { Logger } from '../../src/shared/logger.js';
import { SecretSealer } from '../../src/shared/sealed-secrets.js';
import type { GrantKey } from '../../src/store/oauth-grants.js';
import type { EmailServerRow } from '../../src/store/rows.js';
import type { Store } from '../../src/store/store.js';
import { forEachBackend } from '../support/api-harness.js';
import { resetStore, sharedStore } from '../support/database.js';
import { capturingLogger } from '../support/log-capture.js';
import { deviceCodeAuth } from '../support/fixtures.js';

const USER = 'support@contoso.test';

/**
 * Several engine instances on one database share each account's token cache. The fake identity
 * provider rotates refresh tokens and refuses a spent one (as a strict provider may), so a cache
 * saved from a stale copy would leave a refresh token that no longer works. Here two instances
 * (two OAuth and credential services on the same store) refresh one grant at the same moment,
 * many times, and a third, fresh one can still refresh from what is stored.
 */
forEachBackend('OAuth 2.0 refresh across instances sharing one token cache', (kind) => {
  let store: Store;
  let idp: FakeIdp;
  let sealer: SecretSealer;
  let services: OAuthService[];
  let logLines: string[];
  let logger: Logger;
  let tenantId: string;
  let serverId: string;

  async function open(options: FakeIdpOptions): Promise<void> {
    idp = await startFakeIdp({ pollIntervalSeconds: 1, ...options });
    ({ logger, lines: logLines } = capturingLogger('debug'));
    const accounts = createAccounts(store, sealer, logger, { authorityAddresses: AddressPolicy.allowPrivate() });
    tenantId = (await accounts.tenants.create({ name: `Race ${randomBytes(3).toString('hex')}` })).id;
    serverId = (
      await accounts.servers.create(tenantId, {
        name: 'Shared mailbox',
        imap: {
          host: '127.0.0.1',
          port: 143,
          user: USER,
          auth: deviceCodeAuth(idp.url),
        },
        smtp: { host: '127.0.0.1', port: 587, auth: { mode: 'imap' } },
      })
    ).id;
    const first = instance();
    const code = await first.startDeviceCode(tenantId, serverId, 'imap');
    assert.ok(idp.approve(code.userCode, USER));
    assert.equal((await first.flows.settled(serverId, 'imap'))?.status, 'COMPLETE');
  }

  /** An engine instance's OAuth service over the shared store. */
  function instance(): OAuthService {
    const service = new OAuthService(store, sealer, logger, { identityProviderCa: idp.ca });
    services.push(service);
    return service;
  }

  async function row(): Promise<EmailServerRow> {
    const found = await store.servers.get(tenantId, serverId);
    assert.ok(found);
    return found;
  }

  async function grantKey(): Promise<GrantKey> {
    const server = await row();
    assert.ok(server.imapOAuth);
    return { serverId, tenantId, purpose: 'imap', appKey: appKeyOf(server.imapOAuth) };
  }

  const refreshes = (): number => idp.tokenRequests.filter((r) => r.grantType === 'refresh_token').length;
  const refusedRefreshes = () => idp.tokenRequests.filter((r) => r.grantType === 'refresh_token' && r.error);

  beforeEach(async () => {
    store = await sharedStore(kind);
    await resetStore(store);
    sealer = new SecretSealer(randomBytes(32));
    services = [];
  });
  afterEach(async function () {
    if (this.currentTest?.state === 'failed') {
      process.stdout.write(`--- log of the failed test:\n${logLines.slice(-30).join('\n')}\n`);
    }
    for (const service of services) await service.stop();
    await idp.close();
  });

  it('the provider refuses a spent refresh token: losing the rotated one would need a new sign-in', async () => {
    await open({});
    const stale = await store.query('SELECT cache_sealed FROM oauth_grants WHERE server_id = $1', [serverId]);
    const server = await row();
    await instance().accessToken(server, 'imap', { forceRefresh: true }); // rotates the refresh token
    // A lost update: the cache as it was before the rotation is written back.
    await store.query('UPDATE oauth_grants SET cache_sealed = $2 WHERE server_id = $1', [
      serverId,
      (stale as Array<{ cache_sealed: string }>)[0]?.cache_sealed,
    ]);
    await assert.rejects(instance().accessToken(server, 'imap', { forceRefresh: true }), /sign in again/);
    assert.deepEqual(
      refusedRefreshes().map((r) => r.error),
      ['invalid_grant'],
    );
    assert.equal((await store.oauthGrants.get(serverId, 'imap'))?.status, 'REAUTH_REQUIRED');
  });

  it('two instances refreshing at the same moment never lose the rotated refresh token', async function () {
    this.timeout(120_000);
    // msal-node renews any access token with less than five minutes left: with one-minute tokens
    // every acquisition below is a refresh (and a rotation) at the provider.
    await open({ accessTokenLifetimeSeconds: 60 });
    const [a, b] = [new CredentialService(sealer, instance()), new CredentialService(sealer, instance())];
    const before = refreshes();
    const rounds = 15;
    for (let round = 0; round < rounds; round += 1) {
      const server = await row();
      // IMAP refreshed by the instance watching the mailbox, SMTP by any instance delivering mail.
      const logins = await Promise.all([
        a.imapLogin(server),
        b.imapLogin(server),
        a.smtpLogin(server),
        b.smtpLogin(server, { forceRefresh: true }),
      ]);
      for (const login of logins) {
        assert.ok(login && 'accessToken' in login && idp.verifyAccessToken(USER, login.accessToken), `round ${round}`);
      }
    }
    assert.deepEqual(refusedRefreshes(), [], 'no refresh was made with a spent refresh token');
    assert.ok(refreshes() - before >= rounds * 4, `${refreshes() - before} refreshes`);
    assert.equal((await store.oauthGrants.get(serverId, 'imap'))?.status, 'COMPLETE');

    // A third instance, started afresh, refreshes from the stored cache: no REAUTH_REQUIRED.
    const third = new CredentialService(sealer, instance());
    const login = await third.imapLogin(await row(), { forceRefresh: true });
    assert.ok('accessToken' in login && idp.verifyAccessToken(USER, login.accessToken));
    assert.deepEqual(refusedRefreshes(), []);
    const errors = logLines.filter((l) => (JSON.parse(l) as { level: number }).level >= 50);
    assert.deepEqual(errors, [], 'a refresh waiting for the lock is no error');
  });

  it('hands out a still-valid access token without waiting for the refresh lock', async function () {
    this.timeout(60_000);
    await open({});
    const [a, b] = [instance(), instance()];
    const server = await row();
    await b.accessToken(server, 'imap');

    // Another instance holds the grant's refresh lock (as while it refreshes).
    let release = (): void => undefined;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let locked = (): void => undefined;
    const isLocked = new Promise<void>((resolve) => {
      locked = resolve;
    });
    const holder = new OAuthGrants(store, sealer).withRefreshLock(await grantKey(), async () => {
      locked();
      await held;
    });
    await isLocked;
    try {
      let forcedDone = false;
      const forced = a.accessToken(server, 'imap', { forceRefresh: true }).finally(() => {
        forcedDone = true;
      });
      const requests = idp.tokenRequests.length;
      const [imap, smtp] = await Promise.all([b.accessToken(server, 'imap'), b.accessToken(server, 'smtp')]);
      assert.ok(idp.verifyAccessToken(USER, imap.accessToken) && idp.verifyAccessToken(USER, smtp.accessToken));
      assert.equal(idp.tokenRequests.length, requests, 'the cached token needed no request');
      assert.equal(forcedDone, false, 'a refresh waits for the lock');
      release();
      const refreshed = await forced;
      assert.ok(idp.verifyAccessToken(USER, refreshed.accessToken));
      assert.notEqual(refreshed.accessToken, imap.accessToken);
    } finally {
      release();
      await holder;
    }
  });

  it('a refusal that arrives after a new sign-in does not mark the new sign-in REAUTH_REQUIRED', async function () {
    this.timeout(60_000);
    await open({});
    idp.refuseRefresh(USER); // the stored refresh token is refused from now on (revoked)
    const server = await row();
    let signedInAgain = false;
    /** The refusal's status write comes only after someone has signed in again (the race, made certain). */
    class LateVerdict extends OAuthGrants {
      override async setStatus(...args: Parameters<OAuthGrants['setStatus']>): Promise<boolean> {
        if (args[1].status === 'REAUTH_REQUIRED' && !signedInAgain) {
          signedInAgain = true;
          idp.allowRefresh(USER);
          const other = instance();
          const code = await other.startDeviceCode(tenantId, serverId, 'imap');
          assert.ok(idp.approve(code.userCode, USER));
          assert.equal((await other.flows.settled(serverId, 'imap'))?.status, 'COMPLETE');
        }
        return super.setStatus(...args);
      }
    }
    const tokens = new TokenProvider({
      apps: new MsalApps(new HttpClient({ ca: idp.ca }), logger),
      grants: new LateVerdict(store, sealer),
      sealer,
      logger,
    });
    await assert.rejects(
      tokens.accessToken(server, 'imap', { forceRefresh: true }),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, 'OAUTH_FAILED', err.message);
        assert.match(err.message, /replaced by a new sign-in/);
        return true;
      },
    );
    assert.ok(signedInAgain, 'the refresh was refused');
    assert.deepEqual(
      refusedRefreshes().map((r) => r.error),
      ['invalid_grant'],
    );
    assert.equal((await store.oauthGrants.get(serverId, 'imap'))?.status, 'COMPLETE', 'the new sign-in stands');
    // The next attempt uses the new sign-in's tokens.
    const token = await tokens.accessToken(server, 'imap', { forceRefresh: true });
    assert.ok(idp.verifyAccessToken(USER, token.accessToken));
  });
});
