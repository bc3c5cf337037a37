import type { Clock } from '../../shared/clock.js';
import { systemClock } from '../../shared/clock.js';
import { MailroomError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import type { SecretSealer } from '../../shared/sealed-secrets.js';
import type { AddressPolicy } from '../../shared/address-policy.js';
import type { WebProxy } from '../../shared/web-proxy.js';
import type { OAuthPurpose, OAuthStatus } from '../../store/oauth-grants.js';
import type { EmailServerRow, OAuthFlow } from '../../store/rows.js';
import type { Store } from '../../store/store.js';
import { describeOAuthError } from './describe-error.js';
import { DeviceCodeFlows, type DeviceCodeStart } from './device-code-flows.js';
import { OAuthGrants } from './grants.js';
import { HttpClient } from './http-client.js';
import { MsalApps } from './msal-apps.js';
import { oauthTarget } from './settings.js';
import { grantKeyOf, TokenProvider, type AccessToken, type TokenOptions } from './token-provider.js';

export interface OAuthOptions {
  /**
   * CA certificates (PEM) trusted for the identity provider only (a private or test provider),
   * in place of the system's: list those too to keep them (MAILROOM_OAUTH_CA_FILE does).
   */
  identityProviderCa?: string | string[];
  /** The HTTP proxy the identity provider is reached through (HTTP CONNECT), unless it bypasses its host. */
  httpsProxy?: WebProxy | undefined;
  /**
   * The addresses identity providers may be reached at (MAILROOM_OAUTH_ALLOW_PRIVATE): an
   * authority host is a tenant's setting, checked as each connection is made; any when absent.
   */
  identityProviderAddresses?: AddressPolicy | undefined;
  /** [900] longest a device code is polled for, seconds. */
  deviceCodeLifetimeSeconds?: number;
  /** [systemClock] time for device-code polling. */
  clock?: Clock;
}

/** The sign-in state of one purpose of a server, as the API shows it (never a token or secret). */
export interface OAuthPurposeView {
  status: OAuthStatus;
  flow: OAuthFlow;
  /**
   * The signed-in account, `app <client id>` for client credentials, `service account <e-mail>`
   * for a Google service account.
   */
  account: string | null;
  /**
   * The mailbox the tokens are presented for (the XOAUTH2 user): a shared mailbox when a delegate
   * signed in (`account` differs), the delegating user for a service account.
   */
  mailbox: string;
  /** PENDING: when the code expires; otherwise when the current access token expires. */
  expiresAt: string | null;
  error: string | null;
  /** SMTP with `mode: imap`: the IMAP sign-in is used. */
  sharesImapSignIn: boolean;
}

export interface OAuthStatusView {
  imap: OAuthPurposeView | null;
  smtp: OAuthPurposeView | null;
}

/**
 * OAuth 2.0 for e-mail servers: device-code sign-ins, client credentials, and access tokens
 * from the sealed token cache. msal-node is used only inside `auth/oauth`.
 */
export class OAuthService {
  readonly flows: DeviceCodeFlows;
  private readonly tokens: TokenProvider;
  private readonly grants: OAuthGrants;
  private readonly signInListeners = new Set<(serverId: string, purpose: OAuthPurpose) => void>();

  constructor(
    private readonly store: Store,
    sealer: SecretSealer,
    logger: Logger,
    options: OAuthOptions = {},
  ) {
    const network = new HttpClient({
      ca: options.identityProviderCa,
      proxy: options.httpsProxy,
      addresses: options.identityProviderAddresses,
    });
    const apps = new MsalApps(network, logger);
    this.grants = new OAuthGrants(store, sealer);
    this.tokens = new TokenProvider({ apps, grants: this.grants, sealer, logger });
    this.flows = new DeviceCodeFlows({
      apps,
      grants: this.grants,
      network,
      clock: options.clock ?? systemClock,
      logger,
      lifetimeSeconds: options.deviceCodeLifetimeSeconds,
      // Runs in the context of the request that started the sign-in: the audit names its starter.
      onSignedIn: (key, account) => {
        void this.recordSignIn(key.serverId, key.purpose, account).catch((err: unknown) =>
          logger.error({ err, serverId: key.serverId }, 'the audit entry of a completed sign-in could not be written'),
        );
        for (const listener of this.signInListeners) listener(key.serverId, key.purpose);
      },
    });
  }

  /**
   * Calls `listener` after each completed sign-in: a device-code sign-in, or a token acquired on
   * request (`test`, the client-credentials flow's sign-in); SMTP with `mode: imap` signs in as
   * `imap`. The composition root wakes that server's held outbound queue and its inbound watcher.
   */
  onSignIn(listener: (serverId: string, purpose: OAuthPurpose) => void): void {
    this.signInListeners.add(listener);
  }

  private async recordSignIn(serverId: string, purpose: OAuthPurpose, account: string | null): Promise<void> {
    const [row] = await this.store.query<{ tenant_id: string }>('SELECT tenant_id FROM email_servers WHERE id = $1', [
      serverId,
    ]);
    if (!row) return; // deleted meanwhile: its deletion is on record
    await this.store.audit.record({
      tenantId: row.tenant_id,
      action: 'oauth.sign-in-completed',
      targetKind: 'server',
      targetId: serverId,
      detail: { purpose, account },
    });
  }

  private async server(tenantId: string, serverId: string): Promise<EmailServerRow> {
    const row = await this.store.servers.require(tenantId, serverId);
    return row;
  }

  /** "Get Code": starts a device-code sign-in (cancelling one in progress) and returns the code to show. */
  async startDeviceCode(tenantId: string, serverId: string, purpose: OAuthPurpose): Promise<DeviceCodeStart> {
    const row = await this.server(tenantId, serverId);
    const target = oauthTarget(row, purpose);
    if (!target || target.settings.flow !== 'device-code') {
      throw new MailroomError(
        'OAUTH_NOT_CONFIGURED',
        target
          ? `${purpose.toUpperCase()} of '${row.name}' uses ${target.settings.flow === 'service-account' ? 'a service account' : 'client credentials'}: no sign-in is needed`
          : `${purpose.toUpperCase()} of '${row.name}' does not use OAuth 2.0`,
        { field: 'purpose' },
      );
    }
    try {
      const started = await this.flows.start(grantKeyOf(row, target), target);
      // The code itself is short-lived and shown to whoever asked; the audit keeps only that it was asked.
      await this.store.audit.record({
        tenantId,
        action: 'oauth.sign-in-started',
        targetKind: 'server',
        targetId: serverId,
        detail: { purpose, flow: 'device-code' },
      });
      return started;
    } catch (err) {
      if (err instanceof MailroomError) throw err;
      const failure = describeOAuthError(err);
      throw new MailroomError('OAUTH_FAILED', `no device code was issued: ${failure.message}`, {
        details: { code: failure.code },
      });
    }
  }

  async status(tenantId: string, serverId: string): Promise<OAuthStatusView> {
    const row = await this.server(tenantId, serverId);
    return { imap: await this.purposeView(row, 'imap'), smtp: await this.purposeView(row, 'smtp') };
  }

  private async purposeView(row: EmailServerRow, purpose: OAuthPurpose): Promise<OAuthPurposeView | null> {
    const target = oauthTarget(row, purpose);
    if (!target) return null;
    const key = grantKeyOf(row, target);
    const stored = await this.grants.get(row.id, target.purpose);
    const grant = stored?.appKey === key.appKey ? stored : null;
    const live = this.flows.snapshot(row.id, target.purpose);
    const view: OAuthPurposeView = {
      status: grant?.status ?? 'INCOMPLETE',
      flow: target.settings.flow,
      account: grant?.account ?? null,
      mailbox: target.user,
      expiresAt: grant?.expiresAt?.toISOString() ?? null,
      error: grant?.error ?? null,
      sharesImapSignIn: purpose === 'smtp' && target.purpose === 'imap',
    };
    if (live?.status === 'PENDING') {
      return { ...view, status: 'PENDING', expiresAt: live.expiresAt?.toISOString() ?? null, error: null };
    }
    if (live && live.status !== 'COMPLETE' && view.status !== 'COMPLETE') {
      return { ...view, status: live.status, error: live.error };
    }
    return view;
  }

  /** An access token for the engine's own IMAP or SMTP session. */
  accessToken(row: EmailServerRow, purpose: OAuthPurpose, options?: TokenOptions): Promise<AccessToken> {
    return this.tokens.accessToken(row, purpose, options);
  }

  /** Acquires a token now and reports the result (the "test connection" of the sign-in part). */
  async test(tenantId: string, serverId: string, purpose: OAuthPurpose): Promise<OAuthPurposeView | null> {
    const row = await this.server(tenantId, serverId);
    const target = oauthTarget(row, purpose);
    const fresh = await this.tokens.accessToken(row, purpose, { forceRefresh: true }).then(
      () => true,
      () => false, // the status read below says what failed
    );
    // A token acquired with the client secret is the client-credentials flow's sign-in: the
    // server's sides waiting to retry try again now, as after a device-code sign-in.
    if (fresh && target) for (const listener of this.signInListeners) listener(serverId, target.purpose);
    return this.purposeView(row, purpose);
  }

  /**
   * Ends what this process holds of a server's sign-ins once they were voided (its settings
   * changed) or it was deleted: device-code flows in progress for those purposes are cancelled,
   * and its msal-node applications, with the tokens and client secrets they hold, are dropped.
   * The composition root calls it from `ServerService.onSignInsVoided`.
   */
  forget(serverId: string, purposes: readonly OAuthPurpose[]): Promise<void> {
    this.tokens.forget(serverId);
    return this.flows.cancel(serverId, purposes);
  }

  /** Cancels device-code sign-ins in progress. */
  stop(): Promise<void> {
    return this.flows.stop();
  }
}
