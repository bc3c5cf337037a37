import { createHash } from 'node:crypto';
import type {
  AccountInfo,
  AuthenticationResult,
  ConfidentialClientApplication,
  PublicClientApplication,
} from '@azure/msal-node';
import { MailroomError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import { oauthReauthRequired } from '../../shared/metrics.js';
import type { SecretSealer } from '../../shared/sealed-secrets.js';
import type { OAuthPurpose } from '../../store/oauth-grants.js';
import type { EmailServerRow } from '../../store/rows.js';
import { describeOAuthError, type OAuthFailure } from './describe-error.js';
import type { GrantKey, OAuthGrants } from './grants.js';
import type { MsalApps } from './msal-apps.js';
import { KeyedLock } from './keyed-lock.js';
import { RefreshGate } from './refresh-gate.js';
import {
  describeServiceAccountError,
  GMAIL_SCOPE,
  requestServiceAccountToken,
  ServiceAccountRefused,
  signedAssertion,
  tokenEndpointOf,
} from './service-account.js';
import { parseServiceAccountKey } from '../../shared/service-account-key.js';
import { accountPlaceOf, appKeyOf, appScopes, oauthTarget, scopesFor, type OAuthTarget } from './settings.js';

/** An access token for XOAUTH2, with the mailbox user name it is presented for. */
export interface AccessToken {
  user: string;
  accessToken: string;
  expiresAt: Date | null;
}

export interface TokenOptions {
  /** Ignore a cached access token (the server just refused it): refresh now. */
  forceRefresh?: boolean;
}

/** A grant's msal-node application (no cache plugin) and the gate its refreshes pass. */
interface GatedApp {
  appKey: string;
  app: PublicClientApplication;
  gate: RefreshGate;
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'ETIMEDOUT', 'ECONNRESET']);
/** [300000] a kept service-account token is renewed this long before it expires, ms (msal-node's margin). */
const TOKEN_RENEW_BEFORE_MS = 5 * 60_000;

/** A grant's key: its server and purpose, the app it was made with and the place its tokens go. */
export function grantKeyOf(row: EmailServerRow, target: OAuthTarget): GrantKey {
  return {
    serverId: row.id,
    tenantId: row.tenantId,
    purpose: target.purpose,
    appKey: `${appKeyOf(target.settings)}|${accountPlaceOf(row, target.purpose)}`,
    serverName: row.name,
  };
}

function unavailable(row: EmailServerRow, purpose: OAuthPurpose, why: string, reason: string): MailroomError {
  return new MailroomError(
    'CREDENTIALS_UNAVAILABLE',
    `${purpose.toUpperCase()} OAuth 2.0 credentials of e-mail server '${row.name}' are not usable: ${why}`,
    { details: { serverId: row.id, purpose, reason } },
  );
}

/**
 * Access tokens for the engine's own sessions. Delegated grants (device code) come from the
 * sealed MSAL cache: msal-node hands out the cached token until five minutes before it expires,
 * then refreshes with the refresh token under the grant's refresh lock (held across every
 * instance on the database), and the rotated one is written back before the lock is released,
 * so no instance ever spends a refresh token another has already rotated away. `invalid_grant`
 * marks the grant REAUTH_REQUIRED: that account waits for a person, no other is affected.
 * App-only grants (client credentials) use the sealed client secret, opened only to build the
 * msal-node application. One acquisition per grant at a time.
 */
export class TokenProvider {
  private readonly publicApps = new Map<string, GatedApp>();
  private readonly perGrant = new KeyedLock();
  private readonly confidentialApps = new Map<string, { fingerprint: string; app: ConfidentialClientApplication }>();
  private readonly inFlight = new Map<string, Promise<AccessToken>>();
  /** Service-account tokens per server and purpose, with the fingerprint of what they were made for. */
  private readonly serviceAccountTokens = new Map<string, { fingerprint: string; token: AccessToken }>();
  /** Last status written per client-credentials grant, to write only changes. */
  private readonly appStatus = new Map<string, string>();

  constructor(private readonly deps: { apps: MsalApps; grants: OAuthGrants; sealer: SecretSealer; logger: Logger }) {}

  accessToken(row: EmailServerRow, purpose: OAuthPurpose, options: TokenOptions = {}): Promise<AccessToken> {
    const target = oauthTarget(row, purpose);
    if (!target) throw unavailable(row, purpose, 'this side does not use OAuth 2.0', 'NOT_OAUTH');
    const id = `${row.id}|${purpose}|${options.forceRefresh === true}`;
    const running = this.inFlight.get(id);
    if (running) return running;
    const key = grantKeyOf(row, target);
    const work = (
      target.settings.flow === 'client-credentials'
        ? this.appToken(row, key, target, options)
        : target.settings.flow === 'service-account'
          ? this.serviceAccountToken(row, key, target, options)
          : this.userToken(row, key, target, purpose, options)
    ).finally(() => this.inFlight.delete(id));
    this.inFlight.set(id, work);
    return work;
  }

  /** Drops the in-memory applications of a server (its settings changed or it was deleted). */
  forget(serverId: string): void {
    for (const map of [this.publicApps, this.confidentialApps, this.appStatus, this.serviceAccountTokens]) {
      for (const id of map.keys()) if (id.startsWith(`${serverId}|`)) map.delete(id);
    }
  }

  private log(key: GrantKey): Logger {
    return this.deps.logger.child({
      tenantId: key.tenantId,
      serverId: key.serverId,
      ...(key.serverName !== undefined && { serverName: key.serverName }),
      purpose: key.purpose,
      component: 'oauth',
    });
  }

  private publicApp(key: GrantKey, target: OAuthTarget): GatedApp {
    const id = `${key.serverId}|${key.purpose}`;
    const known = this.publicApps.get(id);
    if (known?.appKey === key.appKey) return known;
    const gated: GatedApp = { appKey: key.appKey, ...this.deps.apps.gatedPublicApp(target.settings) };
    this.publicApps.set(id, gated);
    return gated;
  }

  /**
   * A delegated grant's token. Fast path, without a lock: the stored cache holds an access token
   * valid for more than msal-node's five minutes. Otherwise the refresh runs under the grant's
   * refresh lock (all instances), from the cache as stored at that moment, and the rotated
   * refresh token is saved before the lock is released. One acquisition per grant at a time in
   * this process (they share the msal-node application).
   */
  private userToken(
    row: EmailServerRow,
    key: GrantKey,
    target: OAuthTarget,
    /** What the token is for: SMTP may use the IMAP grant, but asks for the SMTP scope. */
    purpose: OAuthPurpose,
    options: TokenOptions,
  ): Promise<AccessToken> {
    return this.perGrant.run(`${key.serverId}|${key.purpose}`, async () => {
      const grant = await this.deps.grants.get(key.serverId, key.purpose);
      const stored = this.deps.grants.openCache(grant, key);
      if (!grant || stored === null) {
        throw unavailable(row, key.purpose, 'nobody has signed in yet: request a device code', 'INCOMPLETE');
      }
      if (grant.status === 'REAUTH_REQUIRED') {
        throw unavailable(row, key.purpose, grant.error ?? 'sign in again with a new device code', 'REAUTH_REQUIRED');
      }
      const client = this.publicApp(key, target);
      const scopes = scopesFor(purpose, target);
      let result: AuthenticationResult;
      try {
        result =
          (options.forceRefresh === true ? null : await this.cachedToken(row, key, client, stored, scopes)) ??
          (await this.refreshedToken(row, key, client, scopes, options.forceRefresh === true));
      } catch (err) {
        throw await this.failed(row, key, err);
      }
      const expiresAt = result.expiresOn ?? null;
      if (grant.status !== 'COMPLETE' || grant.expiresAt?.getTime() !== expiresAt?.getTime()) {
        await this.deps.grants.setStatus(key, {
          status: 'COMPLETE',
          error: grant.status === 'COMPLETE' ? grant.error : null,
          expiresAt,
        });
      }
      return { user: target.user, accessToken: result.accessToken, expiresAt };
    });
  }

  /** The cached access token, if still valid; null when a refresh is needed (no lock taken, nothing sent). */
  private async cachedToken(
    row: EmailServerRow,
    key: GrantKey,
    client: GatedApp,
    serialized: string,
    scopes: string[],
  ): Promise<AuthenticationResult | null> {
    const account = await this.load(row, key, client, serialized);
    client.gate.refreshAllowed = false;
    try {
      return await client.app.acquireTokenSilent({ account, scopes });
    } catch (err) {
      if (RefreshGate.refused(err)) return null;
      throw err;
    }
  }

  /** Refreshes under the grant's refresh lock, from the cache stored now; saves what changed before unlocking. */
  private refreshedToken(
    row: EmailServerRow,
    key: GrantKey,
    client: GatedApp,
    scopes: string[],
    forceRefresh: boolean,
  ): Promise<AuthenticationResult> {
    return this.deps.grants.withRefreshLock(key, async (locked) => {
      if (locked.serialized === null) {
        throw unavailable(row, key.purpose, 'nobody has signed in yet: request a device code', 'INCOMPLETE');
      }
      const account = await this.load(row, key, client, locked.serialized);
      const cache = client.app.getTokenCache();
      cache.serialize(); // clears msal-node's "changed" flag: from here on it means "changed by this refresh"
      client.gate.refreshAllowed = true;
      try {
        // Another instance may have refreshed while this one waited: its access token is used as is.
        const result = await client.app.acquireTokenSilent({ account, scopes, forceRefresh });
        if (cache.hasChanged()) await locked.save(cache.serialize());
        return result;
      } catch (err) {
        throw new RefreshFailed(err, locked.sealed);
      } finally {
        client.gate.refreshAllowed = false;
      }
    });
  }

  /** Puts a stored cache into the application (replacing what it held) and returns its account. */
  private async load(row: EmailServerRow, key: GrantKey, client: GatedApp, serialized: string): Promise<AccountInfo> {
    const cache = client.app.getTokenCache();
    cache.deserialize(serialized);
    const [account] = await cache.getAllAccounts();
    if (!account) throw unavailable(row, key.purpose, 'the stored sign-in holds no account', 'INCOMPLETE');
    return account;
  }

  private async appToken(
    row: EmailServerRow,
    key: GrantKey,
    target: OAuthTarget,
    options: TokenOptions,
  ): Promise<AccessToken> {
    const sealed = key.purpose === 'imap' ? row.imapClientSecretSealed : row.smtpClientSecretSealed;
    if (sealed === null) throw unavailable(row, key.purpose, 'no client secret is stored', 'INCOMPLETE');
    const secret = this.deps.sealer.open(sealed, {
      tenantId: row.tenantId,
      rowId: row.id,
      field: `${key.purpose}.clientSecret`,
    });
    const fingerprint = `${key.appKey}|${createHash('sha256').update(secret).digest('hex')}`;
    const id = `${key.serverId}|${key.purpose}`;
    let known = this.confidentialApps.get(id);
    if (known?.fingerprint !== fingerprint) {
      known = { fingerprint, app: this.deps.apps.confidentialApp(target.settings, secret) };
      this.confidentialApps.set(id, known);
    }
    const account = `app ${target.settings.clientId}`;
    try {
      const result = await known.app.acquireTokenByClientCredential({
        scopes: appScopes(target),
        skipCache: options.forceRefresh === true,
      });
      if (!result) throw new Error('the identity provider returned no token');
      const expiresAt = result.expiresOn ?? null;
      if (this.appStatus.get(id) !== `COMPLETE|${expiresAt?.getTime()}`) {
        this.appStatus.set(id, `COMPLETE|${expiresAt?.getTime()}`);
        await this.deps.grants.setStatus(key, { status: 'COMPLETE', account, error: null, expiresAt });
      }
      return { user: target.user, accessToken: result.accessToken, expiresAt };
    } catch (err) {
      throw await this.failed(row, key, err, account);
    }
  }

  /**
   * Google Workspace: a token for the mailbox (`sub`) through the JWT bearer grant, signed with
   * the service account's sealed key (opened here, held only while signing). Kept until five
   * minutes before it expires, as msal-node keeps its own; there is no refresh token, a new
   * assertion is signed instead.
   */
  private async serviceAccountToken(
    row: EmailServerRow,
    key: GrantKey,
    target: OAuthTarget,
    options: TokenOptions,
  ): Promise<AccessToken> {
    const sealed = key.purpose === 'imap' ? row.imapClientSecretSealed : row.smtpClientSecretSealed;
    if (sealed === null) throw unavailable(row, key.purpose, 'no service account key is stored', 'INCOMPLETE');
    const id = `${key.serverId}|${key.purpose}`;
    const fingerprint = `${key.appKey}|${target.user}|${createHash('sha256').update(sealed).digest('hex')}`;
    const known = this.serviceAccountTokens.get(id);
    const now = Date.now();
    if (
      options.forceRefresh !== true &&
      known?.fingerprint === fingerprint &&
      (known.token.expiresAt?.getTime() ?? 0) - now > TOKEN_RENEW_BEFORE_MS
    ) {
      return known.token;
    }
    const serviceAccount = target.settings.clientId;
    const account = `service account ${serviceAccount}`;
    try {
      const secret = this.deps.sealer.open(sealed, {
        tenantId: row.tenantId,
        rowId: row.id,
        field: `${key.purpose}.clientSecret`,
      });
      const endpoint = tokenEndpointOf(target.settings.authorityHost);
      const assertion = signedAssertion(parseServiceAccountKey(secret), {
        issuer: serviceAccount,
        subject: target.user,
        audience: endpoint,
        scope: GMAIL_SCOPE,
        nowSeconds: Math.floor(now / 1000),
      });
      const answer = await requestServiceAccountToken(this.deps.apps.network, endpoint, assertion);
      const expiresAt = new Date(now + answer.expiresInSeconds * 1000);
      const token: AccessToken = { user: target.user, accessToken: answer.accessToken, expiresAt };
      this.serviceAccountTokens.set(id, { fingerprint, token });
      if (this.appStatus.get(id) !== 'COMPLETE') {
        this.appStatus.set(id, 'COMPLETE');
        await this.deps.grants.setStatus(key, { status: 'COMPLETE', account, error: null, expiresAt });
      }
      return token;
    } catch (err) {
      this.serviceAccountTokens.delete(id);
      const described =
        err instanceof ServiceAccountRefused
          ? describeServiceAccountError(err, serviceAccount, target.user)
          : undefined;
      throw await this.failed(row, key, err, account, described);
    }
  }

  /** Records a failed acquisition and turns it into the error the caller acts on. */
  private async failed(
    row: EmailServerRow,
    key: GrantKey,
    thrown: unknown,
    account?: string,
    /** The failure already put in words (Google's refusals), instead of msal-node's. */
    described?: OAuthFailure,
  ): Promise<MailroomError> {
    // A refresh's verdict holds only for the token cache it refreshed from.
    const refreshedFrom = thrown instanceof RefreshFailed ? thrown.sealed : undefined;
    const err = thrown instanceof RefreshFailed ? thrown.cause : thrown;
    if (err instanceof MailroomError) return err;
    const failure: OAuthFailure = described ?? describeOAuthError(err);
    const network = NETWORK_CODES.has(failure.code);
    const statusId = `${key.serverId}|${key.purpose}`;
    const seen = `${failure.status}|${failure.message}`;
    // Delegated grants change state once (REAUTH_REQUIRED stops further attempts); app grants may repeat.
    if (!network && (account === undefined || this.appStatus.get(statusId) !== seen)) {
      if (account !== undefined) this.appStatus.set(statusId, seen);
      const written = await this.deps.grants.setStatus(
        key,
        { status: failure.status, error: failure.message, ...(account !== undefined && { account }) },
        refreshedFrom,
      );
      if (!written) {
        // Someone signed in again while this refresh was being refused: the new sign-in stands.
        this.log(key).info(
          { code: failure.code, status: failure.status },
          'OAuth 2.0 refresh refused for a token cache a new sign-in has replaced since; status left as the new sign-in set it',
        );
        // Not the account's fault: the next attempt uses the new sign-in's tokens.
        return new MailroomError(
          'OAUTH_FAILED',
          'the token cache was replaced by a new sign-in while its refresh was refused: the next attempt uses the new one',
          { details: { serverId: row.id, purpose: key.purpose, code: failure.code } },
        );
      }
      if (failure.status === 'REAUTH_REQUIRED') {
        // The one moment a person must act: an error line, a metric (an alert rule), the status in the API.
        oauthReauthRequired.inc({ tenant_id: key.tenantId, server_id: key.serverId, purpose: key.purpose });
        this.log(key).error(
          { event: 'oauth-reauth-required', code: failure.code, error: failure.message },
          'OAuth 2.0 sign-in no longer valid: REAUTH_REQUIRED; this account waits until someone signs in again with a new device code',
        );
      }
    }
    this.log(key).warn(
      { code: failure.code, status: failure.status, error: failure.message },
      'OAuth 2.0 token refused',
    );
    if (network) {
      return new MailroomError('OAUTH_FAILED', `the identity provider could not be asked: ${failure.message}`, {
        details: { serverId: row.id, purpose: key.purpose, code: failure.code },
      });
    }
    return unavailable(row, key.purpose, failure.message, failure.status);
  }
}

/** A refresh that failed, with the sealed token cache it refreshed from. */
class RefreshFailed extends Error {
  constructor(
    override readonly cause: unknown,
    readonly sealed: string | null,
  ) {
    super('refresh failed', { cause });
  }
}
