import type { Clock } from './shared/clock.js';
import type { FastifyInstance } from 'fastify';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';
import { createAccounts, type Accounts } from './accounts/index.js';
import { buildApi } from './api/http-server.js';
import { LeaseKeeper, type LeaseOptions } from './cluster/lease-keeper.js';
import { CredentialService } from './auth/credentials.js';
import { OAuthService, type OAuthOptions } from './auth/oauth/index.js';
import { createInbound, type Inbound, type InboundOptions } from './inbound/index.js';
import { createWebhooks, type WebhookOptions, type Webhooks } from './inbound/webhooks/index.js';
import type { Notifications } from './store/notifications.js';
import { DEFAULT_PARSE_LIMITS } from './inbound/message/parse.js';
import type { OutboundOptions } from './outbound/options.js';
import { OutboundService, type ResponseRenderer } from './outbound/outbound-service.js';
import { remoteSrcOptionsOf, webProxyOf, type Config } from './config/config.js';
import type { AddressPolicy } from './shared/address-policy.js';
import { DEFAULT_MESSAGE_ID_DOMAIN } from './shared/mail-headers.js';
import type { WebProxy } from './shared/web-proxy.js';
import { resolveSecrets } from './config/local-secrets.js';
import { checkCaDir, listenErrorOf } from './config/start-checks.js';
import { engineStateCollector } from './engine-metrics.js';
import type { OperationsApi } from './api/route.js';
import { offCollect, onCollect, renderMetrics } from './shared/metrics.js';
import type { Logger } from './shared/logger.js';
import { SecretSealer } from './shared/sealed-secrets.js';
import { createTemplates, type Templates } from './templates/index.js';
import { Store } from './store/store.js';
import { createLifecycle, type Lifecycle } from './lifecycle/index.js';
import type { RetentionOptions } from './lifecycle/retention-job.js';
import { isMailroomError } from './shared/errors.js';
import { openMessageSources } from './store/sources/open-sources.js';

/**
 * The composition root: config → secrets → store → services → API. Nothing runs at import;
 * `openServices` is what the CLI uses, `buildServices` wires the engine's services (the tests' API
 * harness uses it too), `Engine` adds the leases, the HTTP API and the lifecycle.
 */

export interface Services {
  config: Config;
  logger: Logger;
  store: Store;
  sealer: SecretSealer;
  accounts: Accounts;
  apiToken: string;
  close(): Promise<void>;
}

export async function openServices(config: Config, logger: Logger): Promise<Services> {
  const secrets = await resolveSecrets(config);
  if (secrets.generated.secretKeyFile) {
    logger.warn(
      { file: secrets.generated.secretKeyFile },
      'generated a new secret key for sealing credentials; back it up with the database (without it stored passwords cannot be read)',
    );
  }
  if (secrets.generated.apiTokenFile) {
    logger.warn(
      { file: secrets.generated.apiTokenFile },
      'generated the administrator API token (printed once on the console)',
    );
    process.stderr.write(
      `\nMailroom administrator API token (kept in ${secrets.generated.apiTokenFile}):\n  ${secrets.apiToken}\n\n`,
    );
  }
  const sealer = new SecretSealer(secrets.secretKey, secrets.previousKeys);
  const store = await Store.open(
    { databaseUrl: config.databaseUrl, pgliteDir: config.databaseUrl ? undefined : join(config.dataDir, 'pglite') },
    logger,
  );
  // Raw sources: PostgreSQL unless MAILROOM_BLOB_STORE (or MAILROOM_BLOB_DIR, MAILROOM_S3_*) says otherwise.
  await store.useSources((query) => openMessageSources(config.sources, query)).close();
  logger.info({ sources: config.sources.store }, 'message sources ready');
  const accounts = createAccounts(store, sealer, logger, {
    proxies: config.mailProxies,
    webhookAddresses: config.webhookAddresses,
    authorityAddresses: config.oauthAddresses,
    mailAddresses: config.mailAddresses,
    caDir: config.caDir,
  });
  return { config, logger, store, sealer, accounts, apiToken: secrets.apiToken, close: () => store.close() };
}

/** Response files for replies: the outbound side's view of the templates module. */
function renderWith(templates: Templates): ResponseRenderer {
  return async (request) => {
    const rendered = await templates.render(request);
    return { text: rendered.text, html: rendered.html, attachments: rendered.attachments };
  };
}

/** The inbound tunables the configuration sets. */
function inboundOptionsOf(config: Config): Partial<InboundOptions> {
  const { maxMessageBytes, ...rest } = config.imap;
  return {
    ...rest,
    // Mail naming the override (or the domain of old, when none is set) is a loop candidate.
    messageIdDomain: config.messageIdDomain ?? DEFAULT_MESSAGE_ID_DOMAIN,
    ...(maxMessageBytes !== undefined && { parseLimits: { ...DEFAULT_PARSE_LIMITS, maxBytes: maxMessageBytes } }),
    proxies: config.mailProxies,
    mailAddresses: config.mailAddresses,
  };
}

/** What the services are built with: from the configuration in the engine, chosen by a test. */
export interface ServiceSettings {
  /** This instance's id: in the loop header of sent mail and on the spool it owns. */
  instanceId: string;
  spoolDir: string;
  templates: Omit<Parameters<typeof createTemplates>[0], 'store' | 'logger'>;
  /** OAuth 2.0 sign-ins; null leaves them out (a test that needs none). */
  oauth: OAuthOptions | null;
  inbound: Partial<InboundOptions>;
  outbound: Partial<OutboundOptions>;
  /** [the system clock] the clock outbound's queues and retries run on (a test's injected one). */
  outboundClock?: Clock | undefined;
  webhooks?: Partial<WebhookOptions> | undefined;
  /** The proxy of the engine's own HTTP(S) requests (webhooks here); none when absent. */
  webProxy?: WebProxy | undefined;
  /** The addresses webhooks may be posted to (MAILROOM_WEBHOOK_ALLOW_PRIVATE); public ones only when absent. */
  webhookAddresses?: AddressPolicy | undefined;
  /** The retention job's timings and the floor of waiting mail. */
  retention?: Partial<RetentionOptions> | undefined;
}

/**
 * With several instances on one database: the servers this one holds, how it announces itself,
 * and the signals between the instances (routed messages).
 */
export interface ClusterPlace {
  owns: (serverId: string) => boolean;
  announce: { owner: string; ttlMs: number };
  notifications: Notifications;
}

/** The services of the engine, built and wired to each other but not started. */
export interface EngineServices {
  templates: Templates;
  oauth: OAuthService | undefined;
  credentials: CredentialService;
  outbound: OutboundService;
  inbound: Inbound;
  webhooks: Webhooks;
  lifecycle: Lifecycle;
}

/** The settings the configuration (and the engine's tuning on top) gives the services. */
export function serviceSettingsOf(config: Config, tuning: EngineTuning = {}): ServiceSettings {
  // The engine's own HTTP(S) requests (remote Src, identity provider, webhooks) share one proxy.
  const webProxy = webProxyOf(config);
  return {
    instanceId: config.instanceId,
    spoolDir: config.spoolDir,
    templates: {
      catalog: { dir: config.templatesDir, remoteSrc: config.templatesRemoteSrc, ...remoteSrcOptionsOf(config) },
    },
    oauth: {
      ...(webProxy && { httpsProxy: webProxy }),
      // Trusting a CA replaces the system's list for a request: both, so Microsoft's hosts stay trusted.
      ...(config.oauthCa !== undefined && { identityProviderCa: [...rootCertificates, config.oauthCa] }),
      identityProviderAddresses: config.oauthAddresses,
      ...tuning.oauth,
    },
    inbound: { ...inboundOptionsOf(config), ...tuning.inbound },
    outbound: {
      messageIdDomain: config.messageIdDomain,
      proxies: config.mailProxies,
      mailAddresses: config.mailAddresses,
      ...tuning.outbound,
    },
    webhooks: { requestTimeoutMs: config.webhookTimeoutMs, ...tuning.webhooks },
    webProxy,
    webhookAddresses: config.webhookAddresses,
    retention: { ...config.retention, ...tuning.retention },
  };
}

/**
 * Outbound as the data lifecycle sees it (lifecycle never imports outbound): a cancel or a
 * dead letter's deletion is done here, or asked of the instance holding the file (false until
 * that instance has done it; the erasure or retention run after it finishes the job).
 */
function outboundEraserOf(outbound: OutboundService): Parameters<typeof createLifecycle>[0]['outbound'] {
  const doneOrLater = async (act: () => Promise<{ state: string }>): Promise<boolean> => {
    try {
      return (await act()).state === 'done';
    } catch (err) {
      if (isMailroomError(err, 'OUTBOUND_NOT_WAITING') || isMailroomError(err, 'OUTBOUND_NOT_FOUND')) return false;
      throw err;
    }
  };
  return {
    cancel: (t) => doneOrLater(() => outbound.cancel(t.tenantId, t.destinationId, t.id)),
    deleteDeadLetter: (t) => doneOrLater(() => outbound.deleteDeadLetter(t)),
    dropDeadLetter: (t) => doneOrLater(() => outbound.deleteDeadLetter(t)),
    forgetRecycledFiles: () => outbound.forgetRecycledFiles(),
  };
}

/**
 * A deleted server, or one whose account changed, takes its sign-ins in progress and its token
 * applications (decrypted secrets) with it.
 */
export function endVoidedSignIns(accounts: Accounts, oauth: OAuthService, logger: Logger): void {
  accounts.servers.onSignInsVoided((serverId, purposes) => {
    oauth
      .forget(serverId, purposes)
      .catch((err: unknown) => logger.warn({ err, serverId }, 'ending the sign-ins of a server failed'));
  });
}

/**
 * An inbound side wired to outbound: heartbeats it recognises go to the outbound side that sent
 * them. (Tests make a second one over the same database, as after a restart.)
 */
export function wireInbound(
  base: Pick<Services, 'store' | 'logger'>,
  settings: Pick<ServiceSettings, 'inbound'>,
  wired: Pick<EngineServices, 'credentials' | 'outbound'>,
  cluster?: ClusterPlace,
): Inbound {
  const { outbound } = wired;
  return createInbound({
    store: base.store,
    credentials: wired.credentials,
    logger: base.logger,
    options: settings.inbound,
    onHeartbeat: (e) => outbound.heartbeatReceived(e.token, e.receivedAt.getTime()),
    ...(cluster && { owns: (serverId: string) => cluster.owns(serverId), notifications: cluster.notifications }),
  });
}

/**
 * Builds the services and wires them to each other (nothing starts): the one composition of the
 * engine, used by `Engine` and by the tests' API harness. Without `cluster`, this instance sends
 * every server's heartbeats and watches every server.
 */
export function buildServices(
  base: Pick<Services, 'store' | 'sealer' | 'logger' | 'accounts'>,
  settings: ServiceSettings,
  cluster?: ClusterPlace,
): EngineServices {
  const { store, sealer, logger, accounts } = base;
  const templates = createTemplates({ store, logger, ...settings.templates });
  const oauth = settings.oauth ? new OAuthService(store, sealer, logger, settings.oauth) : undefined;
  if (oauth) endVoidedSignIns(accounts, oauth, logger);
  const credentials = new CredentialService(sealer, oauth);
  const outbound = new OutboundService({
    store,
    credentials,
    logger,
    spoolDir: settings.spoolDir,
    instanceId: settings.instanceId,
    renderResponse: renderWith(templates),
    options: settings.outbound,
    ...(settings.outboundClock && { clock: settings.outboundClock }),
    ...(cluster && {
      // Heartbeats go from the instance watching the mailbox they must arrive in.
      owns: (serverId: string) => cluster.owns(serverId),
      // Announced as running before it looks at its spool: never retired while it starts.
      announce: cluster.announce,
    }),
  });
  const inbound = wireInbound(base, settings, { credentials, outbound }, cluster);
  // A completed sign-in wakes both sides at once: a queue held and a watcher waiting out its retry delay.
  oauth?.onSignIn((serverId) => {
    outbound.credentialsRenewed(serverId);
    inbound.service.credentialsRenewed(serverId);
  });
  const webhooks = createWebhooks({
    store,
    sealer,
    logger,
    signals: inbound.signals,
    options: settings.webhooks,
    proxy: settings.webProxy,
    addresses: settings.webhookAddresses,
  });
  const lifecycle = createLifecycle({
    store,
    logger,
    outbound: outboundEraserOf(outbound),
    options: settings.retention,
  });
  return { templates, oauth, credentials, outbound, inbound, webhooks, lifecycle };
}

/** Tunables on top of the configuration (tests, benchmarks). */
export interface EngineTuning {
  inbound?: Partial<InboundOptions>;
  outbound?: Partial<OutboundOptions>;
  /** e.g. a private identity provider's CA (issue 5). */
  oauth?: OAuthOptions;
  webhooks?: Partial<WebhookOptions>;
  leases?: Partial<LeaseOptions>;
  retention?: Partial<RetentionOptions>;
}

/** [5] the steps of a stop that wait for work in flight: each gets at least this share of the timeout. */
const SHUTDOWN_SHARES = 5;

export type EngineState = 'new' | 'starting' | 'running' | 'stopping' | 'stopped';

/** The long-running service. `start` and `stop` are idempotent; `stop` reuses a stop in progress. */
export class Engine {
  private state: EngineState = 'new';
  private services: Services | undefined;
  private inbound: Inbound | undefined;
  private oauth: OAuthService | undefined;
  private templates: Templates | undefined;
  private outbound: OutboundService | undefined;
  private webhooks: Webhooks | undefined;
  private lifecycle: Lifecycle | undefined;
  private notifications: Notifications | undefined;
  private leases: LeaseKeeper | undefined;
  private api: FastifyInstance | undefined;
  private stopping: Promise<void> | undefined;
  private collector: (() => Promise<void>) | undefined;
  private address: { host: string; port: number } | undefined;

  constructor(
    private readonly config: Config,
    private readonly logger: Logger,
    private readonly tuning: EngineTuning = {},
  ) {}

  get status(): EngineState {
    return this.state;
  }

  /** The API's listening address (port 0 in the config means any free port). */
  get httpAddress(): { host: string; port: number } {
    if (!this.address) throw new Error('engine is not running');
    return this.address;
  }

  get inboundService(): Inbound {
    if (!this.inbound) throw new Error('engine is not running');
    return this.inbound;
  }

  /** Response files: what outbound renders replies with. */
  get templatesService(): Templates {
    if (!this.templates) throw new Error('engine is not running');
    return this.templates;
  }

  get accounts(): Accounts {
    if (!this.services) throw new Error('engine is not running');
    return this.services.accounts;
  }

  async start(): Promise<void> {
    if (this.state !== 'new') return;
    this.state = 'starting';
    try {
      await checkCaDir(this.config.caDir);
      this.services = await openServices(this.config, this.logger);
      const { store, accounts } = this.services;
      // Which servers this instance watches: those it holds the lease of (all, when it is alone).
      const leases = new LeaseKeeper({
        store,
        logger: this.logger,
        instanceId: this.config.instanceId,
        options: { ttlMs: this.config.leaseTtlMs, ...this.tuning.leases },
        onChange: async () => {
          // Watchers of servers given up stop before the lease is released; new ones start.
          if (this.inbound) await this.inbound.service.reconcile();
          // Heartbeats follow the leases (they must arrive in a mailbox this instance watches).
          await this.outbound?.reconcile();
        },
      });
      // Nothing is listened to before the inbound side starts.
      const notifications = store.notifications(this.logger);
      const wired = buildServices(this.services, serviceSettingsOf(this.config, this.tuning), {
        owns: (serverId) => leases.owns(serverId),
        announce: { owner: leases.owner, ttlMs: leases.options.ttlMs },
        notifications,
      });
      this.templates = wired.templates;
      await this.templates.start();
      this.oauth = wired.oauth;
      this.leases = leases;
      const outbound = wired.outbound;
      this.outbound = outbound;
      await outbound.start();
      // Renews the announcement outbound made as it started (it lasts one lease ttl) and takes
      // this instance's share of the servers, which the inbound side watches once it starts.
      await leases.start();
      // Routed messages are announced to the other instances sharing the database (and theirs here).
      this.notifications = notifications;
      this.inbound = wired.inbound;
      this.webhooks = wired.webhooks;
      this.collector = engineStateCollector({
        store,
        inbound: this.inbound,
        leases,
        spoolStats: () => outbound.spoolStats(),
      });
      onCollect(this.collector);
      this.lifecycle = wired.lifecycle;
      onCollect(this.lifecycle.collectStorage);
      this.api = await buildApi({
        accounts,
        store,
        inbound: this.inbound,
        outbound,
        logger: this.logger,
        adminToken: this.services.apiToken,
        templates: this.templates,
        oauth: this.oauth,
        webhooks: this.webhooks,
        lifecycle: this.lifecycle,
        operations: this.operations(),
        waitsPerToken: this.config.waitsPerToken,
        waitsPerTenant: this.config.waitsPerTenant,
        rateLimits: { perToken: this.config.rateLimitPerToken, perAddress: this.config.rateLimitPerAddress },
      });
      const { httpHost, httpPort } = this.config;
      await this.api.listen({ host: httpHost, port: httpPort }).catch((err: unknown) => {
        throw listenErrorOf(err, httpHost, httpPort);
      });
      await this.inbound.start();
      this.webhooks.start();
      // Retention: one instance at a time (the job lease), in the background.
      this.lifecycle.job.start();
      const bound = this.api.server.address();
      this.address = {
        host: this.config.httpHost,
        port: typeof bound === 'object' && bound ? bound.port : this.config.httpPort,
      };
      this.state = 'running';
      this.logger.info({ url: `http://${this.address.host}:${this.address.port}` }, 'mailroom is running');
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  /** Readiness checks, metrics and the cluster view for the API. */
  private operations(): OperationsApi {
    return {
      readiness: async () => {
        const checks: Array<{ name: string; ok: boolean; detail: string }> = [];
        checks.push({ name: 'engine', ok: this.state === 'running', detail: this.state });
        try {
          await this.services?.store.query('SELECT 1');
          checks.push({ name: 'database', ok: true, detail: 'answers' });
        } catch (err) {
          checks.push({ name: 'database', ok: false, detail: (err as Error).message });
        }
        const since = this.leases?.sinceRenewalMs ?? Infinity;
        const ttl = this.config.leaseTtlMs;
        checks.push({
          name: 'leases',
          ok: since < ttl,
          detail: since === Infinity ? 'not renewed yet' : `renewed ${Math.round(since)} ms ago`,
        });
        return { ready: checks.every((c) => c.ok), checks };
      },
      metrics: () => renderMetrics(),
      cluster: () => {
        if (!this.leases) throw new Error('engine is not running');
        return this.leases.view();
      },
      watcherOf: async (serverId) => (this.leases ? this.leases.watcherOf(serverId) : null),
    };
  }

  /**
   * Stops taking requests (long polls answer "nothing new" at once), lets those in flight finish
   * (up to the shutdown timeout), stops the mailbox watchers (each finishes the message in hand
   * and logs out), gives the leases back, sends or spools the mail in flight, closes the database.
   */
  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    this.state = 'stopping';
    this.logger.info('stopping');
    // Agents' long polls answer "nothing new" at once rather than holding the API's close up.
    this.inbound?.feed.endWaits();
    // Each step is awaited in turn (later ones use what earlier ones hand over, and the database
    // closes last), with what is left of the timeout but at least its share: a step that used up
    // the budget (a slow request) must not leave the next ones running under a closed database.
    const timeoutMs = this.config.shutdownTimeoutMs;
    const deadline = performance.now() + timeoutMs;
    const share = (): number => Math.max(deadline - performance.now(), timeoutMs / SHUTDOWN_SHARES);
    const { api, inbound, leases, webhooks, outbound, lifecycle } = this;
    try {
      if (api) await this.awaitStep('api', () => api.close(), share());
      if (lifecycle) await this.awaitStep('retention', () => lifecycle.job.stop(), share());
      if (inbound) await this.awaitStep('inbound', () => inbound.stop(), share());
      // Watchers are stopped: hand the servers to the other instances now rather than at expiry.
      if (leases) await this.awaitStep('leases', () => leases.stop(), share());
      // Webhooks: no new POSTs; the ones in flight finish (bounded by their request timeout).
      if (webhooks) await this.awaitStep('webhooks', () => webhooks.stop(), share());
      // Mail in flight is sent or stays in the spool for the next start.
      if (outbound) await this.awaitStep('outbound', () => outbound.stop(), share());
      if (this.templates) await this.templates.stop();
      if (this.oauth) await this.oauth.stop();
      await this.notifications?.close();
    } finally {
      if (this.collector) offCollect(this.collector);
      if (lifecycle) offCollect(lifecycle.collectStorage);
      await this.services?.close();
      this.logger.debug('database closed');
      this.state = 'stopped';
      this.logger.info('stopped');
    }
  }

  /** Waits up to `ms` for one step of the stop; one that fails or takes longer is logged and left behind. */
  private async awaitStep(name: string, work: () => Promise<void>, ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), ms);
    });
    try {
      const outcome = await Promise.race([work().then(() => 'done' as const), late]);
      if (outcome === 'late') {
        this.logger.warn({ step: name, waitedMs: Math.round(ms) }, 'shutdown step did not finish in time');
      } else {
        this.logger.debug({ step: name }, 'shutdown step done');
      }
    } catch (err) {
      this.logger.error({ err, step: name }, 'shutdown step failed');
    } finally {
      clearTimeout(timer);
    }
  }
}
