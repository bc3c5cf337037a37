import { clientInfoOf, idTokenOf, objectIdOf, opaqueToken } from './tokens.js';

/**
 * The state and rules of the fake identity provider, without HTTP: device codes, issued tokens,
 * app registrations and the faults tests turn on. Every answer is `{status, body}` as Entra ID
 * (v2.0 endpoints) would send it.
 */

export interface FakeIdpApp {
  clientId: string;
  /** Accepted by the client-credentials grant; without it the app is a public client only. */
  clientSecret?: string;
  /** Mailboxes an app-only token may open; unset: every mailbox. */
  mailboxes?: string[];
}

export interface DirectorySettings {
  /** `https://host:port`, without a trailing slash. */
  baseUrl: () => string;
  /** Directory ids the provider knows; unset: any. */
  directories?: string[];
  /** Lifetime of access tokens, seconds. */
  accessTokenLifetimeSeconds: number;
  /** Lifetime of device codes, seconds. */
  deviceCodeLifetimeSeconds: number;
  /** Polling interval the device-code answer asks for, seconds. */
  pollIntervalSeconds: number;
  now: () => number;
}

export interface Reply {
  status: number;
  body: Record<string, unknown>;
}

export interface DeviceCodeInfo {
  userCode: string;
  deviceCode: string;
  clientId: string;
  directoryId: string;
  scopes: string[];
  state: 'pending' | 'approved' | 'denied';
  user?: string;
  expiresAt: number;
}

/** One request to the token endpoint, as tests see it. */
export interface TokenRequestRecord {
  grantType: string;
  at: number;
  clientId: string;
  /** The error answered, if any. */
  error?: string;
}

interface AccessTokenInfo {
  principal: string;
  app: boolean;
  clientId: string;
  expiresAt: number;
}

interface RefreshTokenInfo {
  user: string;
  clientId: string;
  directoryId: string;
  scopes: string[];
}

const OIDC_SCOPES = new Set(['openid', 'profile', 'offline_access', 'email']);

function error(status: number, code: string, description: string): Reply {
  return { status, body: { error: code, error_description: description, error_codes: [], timestamp: '' } };
}

function userCode(): string {
  const letters = 'ABCDEFGHJKLMNPQRSTUVWXYZ';
  let code = '';
  for (let i = 0; i < 9; i += 1) code += letters[Math.floor(Math.random() * letters.length)];
  return code;
}

export class Directory {
  readonly apps = new Map<string, FakeIdpApp>();
  readonly tokenRequests: TokenRequestRecord[] = [];
  /** Every access and refresh token ever issued (for canary tests: none may be stored or logged in clear). */
  readonly issued: string[] = [];
  private readonly deviceCodes = new Map<string, DeviceCodeInfo>();
  private readonly accessTokens = new Map<string, AccessTokenInfo>();
  private readonly refreshTokens = new Map<string, RefreshTokenInfo>();
  private slowDowns = 0;
  private readonly refreshFailures = new Set<string>();
  /**
   * Full Access to a mailbox other than one's own (lower-cased mailbox → delegates): Exchange
   * Online lets a person with Full Access open a shared mailbox over IMAP with their own token, the
   * shared mailbox named as the XOAUTH2 user ("Authenticate an IMAP, POP or SMTP connection using
   * OAuth", https://learn.microsoft.com/exchange/client-developer/legacy-protocols/how-to-authenticate-an-imap-pop-smtp-application-by-using-oauth,
   * "shared mailbox access").
   */
  private readonly mailboxDelegates = new Map<string, Set<string>>();

  constructor(private readonly settings: DirectorySettings) {}

  private get nowSeconds(): number {
    return Math.floor(this.settings.now() / 1000);
  }

  knows(directoryId: string): boolean {
    return this.settings.directories === undefined || this.settings.directories.includes(directoryId);
  }

  openIdConfiguration(directoryId: string): Reply {
    if (!this.knows(directoryId)) {
      return error(400, 'invalid_tenant', `AADSTS90002: Tenant '${directoryId}' not found.`);
    }
    const base = `${this.settings.baseUrl()}/${directoryId}`;
    return {
      status: 200,
      body: {
        issuer: `${base}/v2.0`,
        authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
        token_endpoint: `${base}/oauth2/v2.0/token`,
        device_authorization_endpoint: `${base}/oauth2/v2.0/devicecode`,
        end_session_endpoint: `${base}/oauth2/v2.0/logout`,
        jwks_uri: `${base}/discovery/v2.0/keys`,
        response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
        scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
        subject_types_supported: ['pairwise'],
        id_token_signing_alg_values_supported: ['RS256'],
        tenant_region_scope: null,
      },
    };
  }

  deviceCode(directoryId: string, form: URLSearchParams): Reply {
    if (!this.knows(directoryId))
      return error(400, 'invalid_tenant', `AADSTS90002: Tenant '${directoryId}' not found.`);
    const clientId = form.get('client_id') ?? '';
    if (clientId === '')
      return error(400, 'invalid_request', "AADSTS900144: The request body must contain 'client_id'.");
    const info: DeviceCodeInfo = {
      userCode: userCode(),
      deviceCode: opaqueToken('dc'),
      clientId,
      directoryId,
      scopes: (form.get('scope') ?? '').split(' ').filter((s) => s !== ''),
      state: 'pending',
      expiresAt: this.settings.now() + this.settings.deviceCodeLifetimeSeconds * 1000,
    };
    this.deviceCodes.set(info.userCode, info);
    // The sign-in page (sign-in-page.ts) is served there.
    const verificationUri = `${this.settings.baseUrl()}/devicelogin`;
    return {
      status: 200,
      body: {
        user_code: info.userCode,
        device_code: info.deviceCode,
        verification_uri: verificationUri,
        expires_in: this.settings.deviceCodeLifetimeSeconds,
        interval: this.settings.pollIntervalSeconds,
        message: `To sign in, use a web browser to open the page ${verificationUri} and enter the code ${info.userCode} to authenticate.`,
      },
    };
  }

  token(directoryId: string, form: URLSearchParams): Reply {
    const grantType = form.get('grant_type') ?? '';
    const reply = this.answerToken(directoryId, grantType, form);
    const err = reply.body.error;
    this.tokenRequests.push({
      grantType,
      at: this.settings.now(),
      clientId: form.get('client_id') ?? '',
      ...(typeof err === 'string' && { error: err }),
    });
    return reply;
  }

  private answerToken(directoryId: string, grantType: string, form: URLSearchParams): Reply {
    if (!this.knows(directoryId))
      return error(400, 'invalid_tenant', `AADSTS90002: Tenant '${directoryId}' not found.`);
    switch (grantType) {
      case 'device_code':
      case 'urn:ietf:params:oauth:grant-type:device_code':
        return this.deviceCodeGrant(form);
      case 'refresh_token':
        return this.refreshGrant(directoryId, form);
      case 'client_credentials':
        return this.clientCredentialsGrant(form);
      default:
        return error(400, 'unsupported_grant_type', `AADSTS70003: The grant type '${grantType}' is not supported.`);
    }
  }

  private deviceCodeGrant(form: URLSearchParams): Reply {
    const code = [...this.deviceCodes.values()].find((c) => c.deviceCode === form.get('device_code'));
    if (!code) return error(400, 'bad_verification_code', 'AADSTS70019: Verification code unknown.');
    if (this.settings.now() >= code.expiresAt) {
      return error(
        400,
        'expired_token',
        'AADSTS70020: The provided value for the input parameter device_code expired.',
      );
    }
    if (this.slowDowns > 0) {
      this.slowDowns -= 1;
      return error(400, 'slow_down', 'Polling too fast: wait longer between requests.');
    }
    if (code.state === 'denied') {
      return error(400, 'authorization_declined', 'AADSTS70018: The user declined the sign-in.');
    }
    if (code.state === 'pending' || code.user === undefined) {
      return error(400, 'authorization_pending', 'AADSTS70016: OAuth 2.0 device flow error. Authorization is pending.');
    }
    this.deviceCodes.delete(code.userCode);
    return this.userTokens(code.user, code.clientId, code.directoryId, code.scopes);
  }

  private refreshGrant(directoryId: string, form: URLSearchParams): Reply {
    const token = form.get('refresh_token') ?? '';
    const info = this.refreshTokens.get(token);
    if (!info || info.directoryId !== directoryId || this.refreshFailures.has(info.user)) {
      return error(
        400,
        'invalid_grant',
        'AADSTS50173: The provided grant has expired due to it being revoked, a fresh auth token is needed.',
      );
    }
    this.refreshTokens.delete(token); // rotation: the old refresh token is spent
    return this.userTokens(info.user, info.clientId, directoryId, info.scopes);
  }

  private clientCredentialsGrant(form: URLSearchParams): Reply {
    const clientId = form.get('client_id') ?? '';
    const app = this.apps.get(clientId);
    if (!app) {
      return error(
        400,
        'unauthorized_client',
        `AADSTS700016: Application with identifier '${clientId}' was not found in the directory.`,
      );
    }
    if (app.clientSecret === undefined || form.get('client_secret') !== app.clientSecret) {
      return error(401, 'invalid_client', 'AADSTS7000215: Invalid client secret provided.');
    }
    const scope = form.get('scope') ?? '';
    if (!scope.split(' ').every((s) => s.endsWith('/.default') || OIDC_SCOPES.has(s))) {
      return error(400, 'invalid_scope', 'AADSTS1002012: The provided value for scope is not valid.');
    }
    const accessToken = this.issueAccessToken(`app:${clientId}`, clientId, true);
    const lifetime = this.settings.accessTokenLifetimeSeconds;
    return {
      status: 200,
      body: { token_type: 'Bearer', expires_in: lifetime, ext_expires_in: lifetime, access_token: accessToken },
    };
  }

  private userTokens(user: string, clientId: string, directoryId: string, scopes: string[]): Reply {
    const granted = scopes.filter((s) => !OIDC_SCOPES.has(s));
    const refreshToken = opaqueToken('rt');
    this.issued.push(refreshToken);
    this.refreshTokens.set(refreshToken, { user, clientId, directoryId, scopes });
    const lifetime = this.settings.accessTokenLifetimeSeconds;
    return {
      status: 200,
      body: {
        token_type: 'Bearer',
        scope: granted.join(' '),
        expires_in: lifetime,
        ext_expires_in: lifetime,
        access_token: this.issueAccessToken(user, clientId, false),
        refresh_token: refreshToken,
        id_token: idTokenOf({
          issuer: `${this.settings.baseUrl()}/${directoryId}/v2.0`,
          clientId,
          directoryId,
          user,
          nowSeconds: this.nowSeconds,
        }),
        client_info: clientInfoOf(objectIdOf(user), directoryId),
      },
    };
  }

  /** An access token opening `user`'s mailbox (the fake Google endpoint's, for a service account). */
  issueDelegatedToken(user: string, clientId: string): string {
    return this.issueAccessToken(user, clientId, false);
  }

  private issueAccessToken(principal: string, clientId: string, app: boolean): string {
    const token = opaqueToken(app ? 'app-at' : 'at');
    this.issued.push(token);
    this.accessTokens.set(token, {
      principal,
      clientId,
      app,
      expiresAt: this.settings.now() + this.settings.accessTokenLifetimeSeconds * 1000,
    });
    return token;
  }

  // ---- what tests do -------------------------------------------------------------------------

  pendingCodes(): DeviceCodeInfo[] {
    return [...this.deviceCodes.values()].map((c) => ({ ...c, scopes: [...c.scopes] }));
  }

  /**
   * The device code a person typed on the sign-in page: letters only, any case, spaces and dashes
   * ignored (the codes are nine letters; people copy them with a space or in lower case).
   */
  codeAsTyped(typed: string): DeviceCodeInfo | undefined {
    const info = this.deviceCodes.get(typed.replace(/[\s-]/g, '').toUpperCase());
    return info && { ...info, scopes: [...info.scopes] };
  }

  /** Whether the code's lifetime (`expires_in` of its device-code answer) has passed. */
  isExpired(info: DeviceCodeInfo): boolean {
    return this.settings.now() >= info.expiresAt;
  }

  /**
   * The people with a grant (a refresh token not yet spent or revoked), with the apps they signed
   * in to: what the sign-in page offers to revoke.
   */
  signedIn(): Array<{ user: string; clientIds: string[] }> {
    const byUser = new Map<string, Set<string>>();
    for (const info of this.refreshTokens.values()) {
      const apps = byUser.get(info.user) ?? new Set<string>();
      apps.add(info.clientId);
      byUser.set(info.user, apps);
    }
    return [...byUser].map(([user, apps]) => ({ user, clientIds: [...apps].sort() }));
  }

  /**
   * The person signs in as `user` and enters the code. False when there is no such pending code,
   * or it has expired (the device-code flow gives the person `expires_in`, 15 minutes, to sign in:
   * https://learn.microsoft.com/entra/identity-platform/v2-oauth2-device-code).
   */
  approve(code: string, user: string): boolean {
    const info = this.deviceCodes.get(code);
    if (!info || info.state !== 'pending' || this.isExpired(info)) return false;
    info.state = 'approved';
    info.user = user;
    return true;
  }

  deny(code: string): boolean {
    const info = this.deviceCodes.get(code);
    if (!info) return false;
    info.state = 'denied';
    return true;
  }

  /** Ends the code's lifetime now: the next poll gets `expired_token`. */
  expireDeviceCode(code: string): void {
    const info = this.deviceCodes.get(code);
    if (info) info.expiresAt = this.settings.now();
  }

  /** The next `count` device-code polls answer `slow_down`. */
  slowDown(count = 1): void {
    this.slowDowns += count;
  }

  /** Revokes every refresh and access token of a user (password changed, admin revoked sessions). */
  revoke(user: string): void {
    for (const [token, info] of this.refreshTokens) if (info.user === user) this.refreshTokens.delete(token);
    for (const [token, info] of this.accessTokens) if (info.principal === user) this.accessTokens.delete(token);
  }

  /** Until `allowRefresh`, refreshing any of the user's tokens answers `invalid_grant`. */
  refuseRefresh(user: string): void {
    this.refreshFailures.add(user);
  }

  allowRefresh(user: string): void {
    this.refreshFailures.delete(user);
  }

  /** Every access token issued so far stops being accepted (as if their hour had passed). */
  expireAccessTokens(): void {
    for (const info of this.accessTokens.values()) info.expiresAt = Math.min(info.expiresAt, this.settings.now());
  }

  /** Gives `delegate` Full Access (and Send As) to `mailbox`, as an Exchange administrator would. */
  grantMailboxAccess(mailbox: string, delegate: string): void {
    const key = mailbox.toLowerCase();
    const delegates = this.mailboxDelegates.get(key) ?? new Set<string>();
    delegates.add(delegate.toLowerCase());
    this.mailboxDelegates.set(key, delegates);
  }

  /** Who a still-valid access token belongs to (`app:<clientId>` for app-only tokens), or undefined. */
  principalOf(token: string): string | undefined {
    const info = this.accessTokens.get(token);
    return info && info.expiresAt > this.settings.now() ? info.principal : undefined;
  }

  /** Whether `token` lets `user` open their mailbox (what IMAP and SMTP servers check for XOAUTH2). */
  allows(user: string, token: string): boolean {
    const info = this.accessTokens.get(token);
    if (!info || info.expiresAt <= this.settings.now()) return false;
    if (!info.app) {
      const principal = info.principal.toLowerCase();
      return principal === user.toLowerCase() || this.mailboxDelegates.get(user.toLowerCase())?.has(principal) === true;
    }
    const mailboxes = this.apps.get(info.clientId)?.mailboxes;
    return mailboxes === undefined || mailboxes.some((m) => m.toLowerCase() === user.toLowerCase());
  }
}
