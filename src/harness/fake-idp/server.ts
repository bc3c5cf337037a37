import { createServer, type Server } from 'node:https';
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server as HttpServer,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { makeTestCertificates, type TestCertificates } from './certificates.js';
import { GoogleServiceAccounts, type FakeServiceAccount } from './google-service-accounts.js';
import { Directory, type DeviceCodeInfo, type FakeIdpApp, type Reply, type TokenRequestRecord } from './directory.js';
import { SignInPage, SIGN_IN_PATH, type PageReply, type SignInPageOptions } from './sign-in-page.js';

export interface FakeIdpOptions {
  /** Address to listen on. [host='127.0.0.1'] */
  host?: string;
  /** Port; 0 picks a free one. [port=0] */
  port?: number;
  /** App registrations that may use the client-credentials grant. [apps=[]] */
  apps?: FakeIdpApp[];
  /** Directory (tenant) ids the provider knows; others answer `invalid_tenant`. [directories=any] */
  directories?: string[];
  /** Access token lifetime in seconds. [accessTokenLifetimeSeconds=3600] */
  accessTokenLifetimeSeconds?: number;
  /** Device code lifetime in seconds. [deviceCodeLifetimeSeconds=900] */
  deviceCodeLifetimeSeconds?: number;
  /** Polling interval asked of device-code clients, seconds. [pollIntervalSeconds=5] */
  pollIntervalSeconds?: number;
  /** The provider's clock, ms since the epoch. [now=Date.now] */
  now?: () => number;
  /**
   * Also serve RFC 7662 token introspection over plain HTTP on loopback (what Dovecot's oauth2
   * passdb asks, `introspection_mode = post`), at `introspectionUrl`. [introspection=false]
   */
  introspection?: boolean;
  /** The server certificate and its CA [a new pair, valid two days]. */
  certificates?: TestCertificates;
  /**
   * The people who can sign in on the page at `verificationUri` (`/devicelogin`); empty: any
   * e-mail address typed in. [accounts=[]]
   */
  accounts?: readonly string[];
  /**
   * Called once a person's grant is revoked (with the user) or every access token ended (without
   * one) on the sign-in page: the harness ends the mail connections that used them.
   */
  endSessions?: SignInPageOptions['endSessions'];
  /** Told of what people do on the sign-in page, one line each (no secret). */
  report?: SignInPageOptions['report'];
}

export interface FakeIdp {
  /** `https://127.0.0.1:<port>`: the authority host to configure. */
  readonly url: string;
  /** `https://127.0.0.1:<port>/devicelogin`: the device-code answers' `verification_uri`, a page for people. */
  readonly verificationUri: string;
  /** `127.0.0.1:<port>`. */
  readonly hostPort: string;
  /** PEM of the CA that signed the server certificate: what clients must trust. */
  readonly ca: string;
  /**
   * With `introspection: true`: `http://127.0.0.1:<port>/introspect`, answering a form
   * `token=...` with `{"active": true, "username": "<user>"}` for a valid access token, else
   * `{"active": false}`.
   */
  readonly introspectionUrl: string | undefined;
  /** Every token-endpoint request so far, oldest first. */
  readonly tokenRequests: readonly TokenRequestRecord[];
  /** Every access and refresh token issued so far. */
  readonly issuedTokens: readonly string[];
  addApp(app: FakeIdpApp): void;
  /** Gives `delegate` Full Access and Send As to `mailbox` (a shared mailbox): their tokens open it. */
  grantMailboxAccess(mailbox: string, delegate: string): void;
  /**
   * `https://127.0.0.1:<port>/token`: Google's token endpoint for service accounts (JWT bearer
   * grant); its tokens open mailboxes like the others. The authority host to configure is `url`.
   */
  readonly googleTokenUrl: string;
  /** Registers a Google service account (and the scopes its domain-wide delegation grants). */
  addServiceAccount(account: FakeServiceAccount): void;
  /** Device codes waiting for a person, oldest first. */
  pendingCodes(): DeviceCodeInfo[];
  /** Resolves with the next (or a current) pending device code. */
  waitForCode(timeoutMs?: number): Promise<DeviceCodeInfo>;
  /** The person signs in as `user` and enters `userCode`. */
  approve(userCode: string, user: string): boolean;
  deny(userCode: string): boolean;
  expireDeviceCode(userCode: string): void;
  /** The next `count` device-code polls answer `slow_down`. */
  slowDown(count?: number): void;
  /**
   * Device-code requests wait (unanswered) until `release` is called: a slow provider, for tests
   * of what happens meanwhile; `waiting` counts the requests held.
   */
  holdDeviceCodes(): { waiting: () => number; release: () => void };
  /** Revokes the user's refresh and access tokens: the next refresh gets `invalid_grant`. */
  revoke(user: string): void;
  refuseRefresh(user: string): void;
  allowRefresh(user: string): void;
  expireAccessTokens(): void;
  /** The user (or `app:<clientId>`) a still-valid access token belongs to. */
  isValidAccessToken(token: string): string | undefined;
  /** Whether the token opens `user`'s mailbox: hand this to the fake IMAP and SMTP servers. */
  verifyAccessToken(user: string, token: string): boolean;
  close(): Promise<void>;
}

const FORM_LIMIT = 64 * 1024; // bytes

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > FORM_LIMIT) throw new Error('request body too large');
    chunks.push(chunk as Buffer);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function sendPage(req: IncomingMessage, res: ServerResponse, reply: PageReply): void {
  res.writeHead(reply.status, reply.headers);
  res.end(req.method === 'HEAD' ? undefined : reply.body);
}

function send(res: ServerResponse, reply: Reply): void {
  const body = JSON.stringify(reply.body);
  res.writeHead(reply.status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(body);
}

const ROUTE =
  /^\/([A-Za-z0-9.-]+)\/(v2\.0\/\.well-known\/openid-configuration|oauth2\/v2\.0\/devicecode|oauth2\/v2\.0\/token|discovery\/v2\.0\/keys)$/;

async function route(
  held: { until: Promise<void> | null; waiting: number },
  directory: Directory,
  google: GoogleServiceAccounts,
  page: SignInPage,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const path = new URL(req.url ?? '/', 'https://idp.invalid').pathname;
  if (page.handles(path)) {
    const form = req.method === 'POST' ? await readForm(req) : new URLSearchParams();
    return sendPage(req, res, await page.answer({ method: req.method ?? 'GET', path, form, headers: req.headers }));
  }
  if (path === '/token') {
    // Google's token endpoint (https://oauth2.googleapis.com/token), for service accounts.
    if (req.method !== 'POST') return send(res, { status: 405, body: { error: 'invalid_request' } });
    const form = await readForm(req);
    const reply = google.token(form);
    directory.tokenRequests.push({
      grantType: form.get('grant_type') ?? '',
      at: Date.now(),
      clientId: 'google',
      ...(typeof reply.body.error === 'string' && { error: reply.body.error }),
    });
    return send(res, reply);
  }
  const match = ROUTE.exec(path);
  if (!match) return send(res, { status: 404, body: { error: 'not_found', error_description: `no route ${path}` } });
  const [, directoryId = '', endpoint] = match;
  if (endpoint === 'discovery/v2.0/keys') return send(res, { status: 200, body: { keys: [] } });
  if (endpoint?.endsWith('openid-configuration')) {
    return send(res, directory.openIdConfiguration(directoryId));
  }
  if (req.method !== 'POST') {
    return send(res, { status: 405, body: { error: 'invalid_request', error_description: 'use POST' } });
  }
  const form = await readForm(req);
  if (endpoint?.endsWith('devicecode') && held.until) {
    held.waiting += 1;
    await held.until;
    held.waiting -= 1;
  }
  send(
    res,
    endpoint?.endsWith('devicecode') ? directory.deviceCode(directoryId, form) : directory.token(directoryId, form),
  );
}

/**
 * Starts a fake Microsoft identity platform (v2.0 endpoints) over HTTPS on loopback, with its
 * own CA made at start. It serves the OpenID configuration, the device-code endpoint and the
 * token endpoint (device code, refresh token and client-credentials grants); and, at `/token`,
 * Google's token endpoint for service accounts (`google-service-accounts.ts`).
 */
export async function startFakeIdp(options: FakeIdpOptions = {}): Promise<FakeIdp> {
  const certs = options.certificates ?? makeTestCertificates();
  const host = options.host ?? '127.0.0.1';
  const holder: { server?: Server } = {};
  const held: { until: Promise<void> | null; waiting: number } = { until: null, waiting: 0 };
  const port = (): number => (holder.server?.address() as AddressInfo | null)?.port ?? 0;
  const directory = new Directory({
    baseUrl: () => `https://${host}:${port()}`,
    directories: options.directories,
    accessTokenLifetimeSeconds: options.accessTokenLifetimeSeconds ?? 3600,
    deviceCodeLifetimeSeconds: options.deviceCodeLifetimeSeconds ?? 900,
    pollIntervalSeconds: options.pollIntervalSeconds ?? 5,
    now: options.now ?? Date.now,
  });
  for (const app of options.apps ?? []) directory.apps.set(app.clientId, app);
  const google = new GoogleServiceAccounts({
    tokenUrl: () => `https://${host}:${port()}/token`,
    now: options.now ?? Date.now,
    issue: (user, clientId) => directory.issueDelegatedToken(user, clientId),
  });

  const page = new SignInPage({
    directory,
    accounts: options.accounts ?? [],
    endSessions: options.endSessions,
    report: options.report,
  });

  const https = createServer({ key: certs.key, cert: certs.cert }, (req, res) => {
    route(held, directory, google, page, req, res).catch((err: unknown) =>
      send(res, { status: 500, body: { error: 'server_error', error_description: String(err) } }),
    );
  });
  holder.server = https;
  await new Promise<void>((resolve, reject) => {
    https.once('error', reject);
    https.listen(options.port ?? 0, host, () => resolve());
  });
  const introspection = options.introspection ? await startIntrospection(directory, host) : undefined;
  let closing: Promise<void> | undefined;

  return {
    url: `https://${host}:${port()}`,
    verificationUri: `https://${host}:${port()}${SIGN_IN_PATH}`,
    hostPort: `${host}:${port()}`,
    ca: certs.ca,
    introspectionUrl: introspection?.url,
    tokenRequests: directory.tokenRequests,
    issuedTokens: directory.issued,
    addApp: (app) => directory.apps.set(app.clientId, app),
    grantMailboxAccess: (mailbox, delegate) => directory.grantMailboxAccess(mailbox, delegate),
    googleTokenUrl: `https://${host}:${port()}/token`,
    addServiceAccount: (account) => google.add(account),
    pendingCodes: () => directory.pendingCodes(),
    async waitForCode(timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const code = directory.pendingCodes().find((c) => c.state === 'pending');
        if (code) return code;
        if (Date.now() > deadline) throw new Error('no device code was requested in time');
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
    approve: (code, user) => directory.approve(code, user),
    deny: (code) => directory.deny(code),
    expireDeviceCode: (code) => directory.expireDeviceCode(code),
    slowDown: (count) => directory.slowDown(count),
    holdDeviceCodes() {
      let resolve = (): void => undefined;
      held.until = new Promise<void>((done) => (resolve = done));
      return {
        waiting: () => held.waiting,
        release: () => {
          held.until = null;
          resolve();
        },
      };
    },
    revoke: (user) => directory.revoke(user),
    refuseRefresh: (user) => directory.refuseRefresh(user),
    allowRefresh: (user) => directory.allowRefresh(user),
    expireAccessTokens: () => directory.expireAccessTokens(),
    isValidAccessToken: (token) => directory.principalOf(token),
    verifyAccessToken: (user, token) => directory.allows(user, token),
    close() {
      closing ??= Promise.all([
        new Promise<void>((resolve) => {
          https.close(() => resolve());
          https.closeAllConnections();
        }),
        introspection?.close(),
      ]).then(() => undefined);
      return closing;
    },
  };
}

/** RFC 7662 introspection over plain HTTP on loopback (Dovecot's oauth2 passdb speaks HTTP here). */
async function startIntrospection(
  directory: Directory,
  host: string,
): Promise<{ url: string; close: () => Promise<void> }> {
  const http: HttpServer = createHttpServer((req, res) => {
    void (async () => {
      if (req.method !== 'POST' || !(req.url ?? '').startsWith('/introspect')) {
        return send(res, { status: 404, body: { error: 'not_found' } });
      }
      const token = (await readForm(req)).get('token') ?? '';
      const principal = directory.principalOf(token);
      send(res, { status: 200, body: principal ? { active: true, username: principal } : { active: false } });
    })().catch((err: unknown) =>
      send(res, { status: 500, body: { error: 'server_error', error_description: String(err) } }),
    );
  });
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(0, host, () => resolve());
  });
  const port = (http.address() as AddressInfo).port;
  return {
    url: `http://${host}:${port}/introspect`,
    close: () =>
      new Promise<void>((resolve) => {
        http.close(() => resolve());
        http.closeAllConnections();
      }),
  };
}
