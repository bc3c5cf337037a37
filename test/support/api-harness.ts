import { randomBytes } from 'node:crypto';
import type { Clock } from '../../src/shared/clock.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { OutboundOptions } from '../../src/outbound/options.js';
import type { OutboundService } from '../../src/outbound/outbound-service.js';
import type { FastifyInstance } from 'fastify';
import { createAccounts, type Accounts } from '../../src/accounts/index.js';
import { buildApi } from '../../src/api/http-server.js';
import type { RateLimits } from '../../src/api/rate-limits.js';
import type { OAuthOptions, OAuthService } from '../../src/auth/oauth/index.js';
import type { Inbound, InboundOptions } from '../../src/inbound/index.js';
import type { Webhooks } from '../../src/inbound/webhooks/index.js';
import { buildServices, wireInbound, type ServiceSettings } from '../../src/main.js';
import { AddressPolicy } from '../../src/shared/address-policy.js';
import { SecretSealer } from '../../src/shared/sealed-secrets.js';
import type { Templates } from '../../src/templates/index.js';
import type { Lifecycle } from '../../src/lifecycle/index.js';
import type { Store, StoreKind } from '../../src/store/store.js';
import { resetStore, sharedStore } from './database.js';
import { destinationBody, serverBody } from './fixtures.js';
import { capturingLogger } from './log-capture.js';
import { postgresMissing, skipWithout } from './requirements.js';
import { routeMessages, type RouteTarget } from './routed-messages.js';

export interface ApiResponse<T = Record<string, unknown>> {
  status: number;
  body: T;
  raw: string;
  /** Response headers, by lower-case name. */
  headers: Record<string, string>;
}

export interface ApiHarness {
  kind: StoreKind;
  store: Store;
  accounts: Accounts;
  app: FastifyInstance;
  adminToken: string;
  logLines: string[];
  inbound: Inbound;
  /** OAuth 2.0 (only when `oauthOptions` were given) and the sealer it and the credentials use. */
  oauth: OAuthService | undefined;
  sealer: SecretSealer;
  /** The outbound side (not started: call `outbound.start()`), with a temporary spool. */
  outbound: OutboundService;
  spoolDir: string;
  /** Response files from `templateOptions.dir` (the shipped `templates/` by default); no watching: call `reload()`. */
  templates: Templates;
  /** Webhook push delivery with FAST_WEBHOOKS timings (not started: call `webhooks.start()`). */
  webhooks: Webhooks;
  /** Retention, erasures, storage figures (the retention job not started: call `lifecycle.job.runOnce()`). */
  lifecycle: Lifecycle;
  /** A second inbound side over the same database, as after an engine restart. */
  restartInbound(): Inbound;
  call<T = Record<string, unknown>>(
    method: string,
    url: string,
    body?: unknown,
    token?: string,
  ): Promise<ApiResponse<T>>;
  close(): Promise<void>;
}

/**
 * The real API (fastify, schemas, services, store) on one backend, driven through
 * fastify's inject (the whole HTTP stack but the socket). Logs are captured.
 */
/** Inbound timings for tests: quick polls and retries. */
export const FAST_INBOUND: Partial<InboundOptions> = {
  reconcileIntervalMs: 200,
  pollIntervalMs: 300,
  safetyPollMs: 5_000,
  reconnectMinMs: 100,
  reconnectMaxMs: 1_000,
  authRetryMinMs: 500,
  authRetryMaxMs: 2_000,
  socketTimeoutMs: 10_000,
};

/** Webhook timings for tests: retries after 50-100 ms, `failing` after 3 failed attempts. */
export const FAST_WEBHOOKS = {
  retryMinMs: 100,
  retryMaxMs: 400,
  failingAfterAttempts: 3,
  requestTimeoutMs: 2_000,
  pollIntervalMs: 500,
};

/** What an operator allows through the environment, set explicitly for tests. */
export interface OperatorAllowances {
  /**
   * [AddressPolicy.allowPrivate()] where webhooks may be posted (MAILROOM_WEBHOOK_ALLOW_PRIVATE):
   * tests' receivers are on 127.0.0.1, so private addresses are allowed unless a test says otherwise.
   */
  webhookAddresses?: AddressPolicy;
  /** [os.tmpdir()] MAILROOM_CA_DIR: tests write their CA files into temporary folders. */
  caDir?: string;
  /** [allow private] where an OAuth 2.0 authorityHost may lead (MAILROOM_OAUTH_ALLOW_PRIVATE). */
  authorityAddresses?: AddressPolicy;
  /**
   * [AddressPolicy.allowPrivate()] where IMAP and SMTP hosts a tenant's token sets may lead
   * (MAILROOM_MAIL_ALLOW_PRIVATE): tests' mail servers are on 127.0.0.1.
   */
  mailAddresses?: AddressPolicy;
  /** [none] request rate limits (MAILROOM_RATE_LIMIT_PER_TOKEN, …_PER_ADDRESS): tests choose their own. */
  rateLimits?: RateLimits;
}

export async function openApiHarness(
  kind: StoreKind,
  inboundOptions: Partial<InboundOptions> = FAST_INBOUND,
  outboundOptions: Partial<OutboundOptions> = {},
  templateOptions: { dir?: string; now?: () => Date } = {},
  oauthOptions?: OAuthOptions,
  operator: OperatorAllowances = {},
  /** [the system clock] outbound's clock (a FakeClock drives retries without waiting). */
  outboundClock?: Clock,
): Promise<ApiHarness> {
  const store = await sharedStore(kind);
  await resetStore(store);
  const { logger, lines } = capturingLogger('debug');
  const sealer = new SecretSealer(randomBytes(32));
  const webhookAddresses = operator.webhookAddresses ?? AddressPolicy.allowPrivate();
  const mailAddresses = operator.mailAddresses ?? AddressPolicy.allowPrivate();
  const accounts = createAccounts(store, sealer, logger, {
    proxies: outboundOptions.proxies,
    mailAddresses,
    webhookAddresses,
    // The tests' identity providers are on 127.0.0.1.
    authorityAddresses: operator.authorityAddresses ?? AddressPolicy.allowPrivate(),
    caDir: operator.caDir ?? tmpdir(),
  });
  const adminToken = `admin-${randomBytes(8).toString('hex')}`;
  const spoolDir = await mkdtemp(join(tmpdir(), 'mailroom-spool-'));
  // The engine's own wiring (main.ts), with test settings and no cluster (every server is this one's).
  const settings: ServiceSettings = {
    instanceId: 'test-instance',
    spoolDir,
    templates: {
      catalog: { dir: templateOptions.dir ?? join(process.cwd(), 'templates'), watch: false, pollIntervalMs: 0 },
      options: { ...(templateOptions.now && { now: templateOptions.now }) },
    },
    oauth: oauthOptions ?? null,
    inbound: { mailAddresses, ...inboundOptions },
    outbound: {
      fsync: false,
      probeIntervalMs: 300,
      authRetryMs: 500,
      heartbeatIntervalMs: 0,
      mailAddresses,
      ...outboundOptions,
    },
    webhooks: FAST_WEBHOOKS,
    webhookAddresses,
    outboundClock,
  };
  const base = { store, sealer, logger, accounts };
  const { templates, oauth, outbound, inbound, webhooks, credentials, lifecycle } = buildServices(base, settings);
  await templates.start();
  const app = await buildApi({
    accounts,
    store,
    inbound,
    outbound,
    logger,
    adminToken,
    templates,
    oauth,
    webhooks,
    lifecycle,
    ...(operator.rateLimits && { rateLimits: operator.rateLimits }),
  });
  return {
    kind,
    store,
    accounts,
    app,
    adminToken,
    logLines: lines,
    async call<T>(method: string, url: string, body?: unknown, token: string = adminToken): Promise<ApiResponse<T>> {
      const res = await app.inject({
        method: method as 'GET',
        url,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body !== undefined && { 'content-type': 'application/json' }),
        },
        ...(body !== undefined && { payload: JSON.stringify(body) }),
      });
      const headers = Object.fromEntries(Object.entries(res.headers).map(([k, v]) => [k, String(v)]));
      return { status: res.statusCode, body: (res.body === '' ? {} : res.json()) as T, raw: res.body, headers };
    },
    inbound,
    webhooks,
    lifecycle,
    restartInbound: () => wireInbound(base, settings, { credentials, outbound }),
    oauth,
    sealer,
    outbound,
    spoolDir,
    templates,
    async close() {
      await app.close();
      await lifecycle.job.stop();
      await inbound.stop();
      await webhooks.stop();
      await outbound.stop();
      await oauth?.stop();
      await templates.stop();
      await rm(spoolDir, { recursive: true, force: true });
    },
  };
}

/** Defines the same suite once per database backend; PostgreSQL is skipped (with a note) only outside CI. */
export function forEachBackend(title: string, suite: (kind: StoreKind) => void): void {
  for (const kind of ['postgres', 'pglite'] as const) {
    describe(`${title} [${kind}]`, function () {
      before(async function () {
        if (kind === 'postgres') skipWithout(this, await postgresMissing());
      });
      suite(kind);
    });
  }
}

/**
 * A tenant with one e-mail server (not watched) and one destination using it: where the tests of
 * agents' waits route messages to.
 */
export async function addRouteTarget(
  h: ApiHarness,
  name: string,
  /** [1] which fixture account (two targets in one test need two). */
  n = 1,
): Promise<{ tenantId: string; serverId: string; destinationId: string }> {
  const tenant = await h.call<{ id: string }>('POST', '/api/v1/tenants', { name });
  const server = await h.call<{ id: string }>('POST', `/api/v1/tenants/${tenant.body.id}/servers`, serverBody(n));
  const destination = await h.call<{ id: string }>(
    'POST',
    `/api/v1/tenants/${tenant.body.id}/destinations`,
    destinationBody(n, server.body.id),
  );
  if (destination.status !== 201) throw new Error(`destination not created: ${destination.raw}`);
  return { tenantId: tenant.body.id, serverId: server.body.id, destinationId: destination.body.id };
}

/** Routes `n` messages as inbound's commit does, then signals them as inbound does after it. */
export async function routeAndSignal(h: ApiHarness, target: RouteTarget, n: number): Promise<number[]> {
  const seqs = await routeMessages(h.store, target, n);
  h.inbound.signals.routed([target.destinationId]);
  return seqs;
}

/**
 * The usual e-mail server of an integration test, through the API: IMAP `support@example.com`
 * (password `imap-pass`, plain text) on the fake IMAP server's `imapPort`, SMTP without login on
 * 2525; answers its id (the test fails at once if the API refuses it).
 */
export async function addPlainServer(
  h: Pick<ApiHarness, 'call'>,
  tenantId: string,
  imapPort: number,
  name = 'Main',
): Promise<string> {
  const server = await h.call<{ id: string }>('POST', `/api/v1/tenants/${tenantId}/servers`, {
    name,
    imap: {
      host: '127.0.0.1',
      port: imapPort,
      secure: false,
      user: 'support@example.com',
      auth: { method: 'password', password: 'imap-pass' },
    },
    smtp: { host: '127.0.0.1', port: 2525, auth: { mode: 'none' } },
  });
  if (server.status !== 201) throw new Error(`the e-mail server was refused: ${server.raw}`);
  return server.body.id;
}

/** The usual destination `support@example.com` (named Support) using `serverId`; answers its id. */
export async function addSupportDestination(
  h: Pick<ApiHarness, 'call'>,
  tenantId: string,
  serverId: string,
): Promise<string> {
  const destination = await h.call<{ id: string }>('POST', `/api/v1/tenants/${tenantId}/destinations`, {
    name: 'Support',
    address: 'support@example.com',
    serverId,
  });
  if (destination.status !== 201) throw new Error(`the destination was refused: ${destination.raw}`);
  return destination.body.id;
}
