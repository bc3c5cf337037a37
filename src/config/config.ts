import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { AddressPolicy, AddressPolicyError } from '../shared/address-policy.js';
import { MailroomError } from '../shared/errors.js';
import { NO_PROXY, PROXY_NAME, type MailProxies } from '../shared/mail-proxies.js';
import { isHost } from '../shared/validation.js';
import { ProxyBypass, ProxyBypassError, type WebProxy } from '../shared/web-proxy.js';
import { loadSourceConfig, type SourceConfig } from './source-config.js';

/** The engine's configuration, validated once at start and then passed around as typed values. */
export interface Config {
  /** `postgres://…` selects PostgreSQL; absent means the embedded PGlite database in `dataDir`. */
  databaseUrl: string | undefined;
  /** [./data] embedded database, generated secret key and API token. */
  dataDir: string;
  /** [./spool] outbound spool folders. */
  spoolDir: string;
  /** [./templates] response files. */
  templatesDir: string;
  /**
   * MAILROOM_CA_DIR [none]: the directory whose PEM files an e-mail server's `imap.caFile` and
   * `smtp.caFile` may name; without it no CA file is accepted.
   */
  caDir: string | undefined;
  /** [false] MAILROOM_TEMPLATES_REMOTE_SRC: fetch http/https `Src` of response files (off: such responses are unavailable). */
  templatesRemoteSrc: boolean;
  /**
   * MAILROOM_REMOTE_SRC_ALLOW_PRIVATE [false]: the addresses a remote `Src` and each redirect it
   * takes may be fetched from besides public ones: `true` (all but cloud metadata) or a list of
   * CIDR ranges. Its own setting, not the webhooks': response files are the operator's, webhook
   * URLs a tenant's, and an intranet server of response texts is no reason to let tenants in.
   */
  remoteSrcAddresses: AddressPolicy;
  /** MAILROOM_REMOTE_SRC_ALLOW_HTTP [false]: remote `Src` may be plain `http://` (else https only, redirects included). */
  remoteSrcAllowHttp: boolean;
  /**
   * MAILROOM_WEBHOOK_ALLOW_PRIVATE [false]: the addresses webhooks may be posted to besides
   * public ones: `true` (all but cloud metadata) or a list of CIDR ranges.
   */
  webhookAddresses: AddressPolicy;
  /**
   * MAILROOM_OAUTH_ALLOW_PRIVATE [false]: the addresses an e-mail server's OAuth 2.0 `authorityHost`
   * (which a tenant sets, and the engine sends its sign-ins and client secrets to) may lead to
   * besides public ones: `true` (all but cloud metadata) or a list of CIDR ranges, for an
   * identity provider on the operator's own network.
   */
  oauthAddresses: AddressPolicy;
  /**
   * MAILROOM_OAUTH_CA_FILE [none]: a PEM file of CA certificates the engine trusts for identity
   * providers besides the system's (a private provider, or the harness's fake one); its text, read
   * once at start.
   */
  oauthCa: string | undefined;
  /**
   * MAILROOM_MAIL_ALLOW_PRIVATE [false]: the addresses the IMAP and SMTP hosts a tenant's token
   * sets (or whose port or proxy it changes) may lead to besides public ones: `true` (all but
   * cloud metadata) or a list of CIDR ranges, for tenants' mail servers on the operator's own
   * network. Hosts the operator sets (administrator token, CLI) are not limited.
   */
  mailAddresses: AddressPolicy;
  /**
   * MAILROOM_HTTPS_PROXY: `http://[user:password@]host:port` of the proxy the engine's own HTTP(S)
   * requests go through, with HTTP CONNECT (the identity provider's sign-ins and tokens, webhooks,
   * remote `Src` of response files); none when absent.
   */
  httpsProxy: URL | undefined;
  /**
   * MAILROOM_NO_PROXY [localhost,127.0.0.0/8,::1]: hosts those requests reach directly although
   * MAILROOM_HTTPS_PROXY is set (comma-separated host names with their subdomains, IP addresses,
   * CIDR ranges, or `*`); setting it replaces the default.
   */
  noProxy: ProxyBypass;
  /**
   * The proxies IMAP and SMTP connections go through (HTTP CONNECT): MAILROOM_MAIL_PROXY,
   * `http://[user:password@]host:port`, for every e-mail server that chooses none, and
   * MAILROOM_PROXIES, `name=http://…[,name=http://…]`, the ones a server can choose by name.
   */
  mailProxies: MailProxies;
  /** base64 32-byte key; generated into dataDir for the embedded database when absent. */
  secretKey: string | undefined;
  /** Older keys (comma-separated) still accepted when opening sealed values. */
  previousSecretKeys: string[];
  /** Administrator API token; generated into dataDir for the embedded database when absent. */
  apiToken: string | undefined;
  /** [127.0.0.1] */
  httpHost: string;
  /** [8025] */
  httpPort: number;
  /** [info] */
  logLevel: string;
  /** [false unless stdout is a terminal] */
  logPretty: boolean;
  /** [10000] milliseconds a graceful stop may take before work in flight is abandoned. */
  shutdownTimeoutMs: number;
  /** MAILROOM_WAITS_PER_TOKEN [200]: long polls and event streams one API token may hold open at once. */
  waitsPerToken: number;
  /** MAILROOM_WAITS_PER_TENANT [1000]: the same, for all of one tenant's tokens together. */
  waitsPerTenant: number;
  /** MAILROOM_RATE_LIMIT_PER_TOKEN [6000]: requests one API token may make per minute; 0: no limit. */
  rateLimitPerToken: number;
  /** MAILROOM_RATE_LIMIT_PER_ADDRESS [300]: requests without a valid token one address may make per minute; 0: no limit. */
  rateLimitPerAddress: number;
  /**
   * MAILROOM_WEBHOOK_TIMEOUT_MS [10000]: how long one webhook POST may take. A crashed instance's
   * webhook events are taken over about this long plus 10 s after its last claim.
   */
  webhookTimeoutMs: number;
  /** [host name] this instance's name: in the loop header of sent mail and on the spool it owns. */
  instanceId: string;
  /**
   * MAILROOM_LEASE_TTL_MS [20000]: with several instances on one database, a server whose
   * instance stopped renewing its lease is taken over by another within about this long (plus a
   * quarter of it for the next renewal).
   */
  leaseTtlMs: number;
  /**
   * MAILROOM_MESSAGE_ID_DOMAIN [none: the sending address's domain]: the domain of every Message-ID
   * Mailroom writes, overriding the sending address's (inbound also takes mail naming it for a
   * loop candidate).
   */
  messageIdDomain: string | null;
  /** Where raw message sources are kept (see SourceConfig). */
  sources: SourceConfig;
  retention: {
    /** MAILROOM_RETENTION_INTERVAL_MS [3600000]: how often the retention job runs. */
    intervalMs: number;
    /** MAILROOM_RETENTION_WAITING_FLOOR_DAYS [30]: unclaimed mail younger than this is never deleted. */
    waitingFloorDays: number;
  };
  /** Inbound tunables; absent ones keep the engine's defaults. */
  imap: {
    /** MAILROOM_IMAP_POLL_INTERVAL_MS [60000]: polling on servers without IDLE. */
    pollIntervalMs?: number;
    /** MAILROOM_IMAP_SAFETY_POLL_MS [300000]: safety sync while idling. */
    safetyPollMs?: number;
    /** MAILROOM_RECONCILE_INTERVAL_MS [5000]: how often server changes are picked up. */
    reconcileIntervalMs?: number;
    /** MAILROOM_MAX_MESSAGE_BYTES [26214400]: larger messages are quarantined without fetching. */
    maxMessageBytes?: number;
    /** MAILROOM_IMAP_BATCH_MESSAGES [1000]: messages fetched and committed together. */
    batchMaxCount?: number;
    /**
     * MAILROOM_IMAP_FETCH_MEMORY_MB [256]: memory for fetched message sources, all mailboxes
     * together; a batch is fetched once its bytes fit.
     */
    fetchMemoryBytes?: number;
    /**
     * MAILROOM_IMAP_CONNECT_CONCURRENCY [32] and MAILROOM_IMAP_CONNECTS_PER_HOST [8]: IMAP
     * connection set-ups in progress at once, in all and towards one host.
     */
    connectLimits?: { concurrency: number; perHost: number };
  };
}

export type Env = Record<string, string | undefined>;

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

function intVar(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = nonEmpty(env, name);
  if (raw === undefined) return fallback;
  // Decimal digits only: Number() would also take '0x1F90', '2e4' and '8080.0'.
  const value = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new MailroomError('CONFIG_INVALID', `${name} must be a whole number from ${min} to ${max} (got '${raw}')`, {
      field: name,
    });
  }
  return value;
}

function optionalInt<K extends string>(
  env: Env,
  name: string,
  key: K,
  min: number,
  max: number,
): Partial<Record<K, number>> {
  if (nonEmpty(env, name) === undefined) return {};
  return { [key]: intVar(env, name, 0, min, max) } as Partial<Record<K, number>>;
}

function boolVar(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (['1', 'true', 'yes', 'on'].includes(raw.toLowerCase())) return true;
  if (['0', 'false', 'no', 'off'].includes(raw.toLowerCase())) return false;
  throw new MailroomError('CONFIG_INVALID', `${name} must be true or false (got '${raw}')`, { field: name });
}

function addressPolicyVar(env: Env, name: string): AddressPolicy {
  try {
    return AddressPolicy.parse(env[name]);
  } catch (err) {
    if (!(err instanceof AddressPolicyError)) throw err;
    throw new MailroomError(
      'CONFIG_INVALID',
      `${name} must be true, false or comma-separated IP addresses and CIDR ranges: ${err.message}`,
      { field: name },
    );
  }
}

function proxyVar(env: Env, name: string): URL | undefined {
  const raw = nonEmpty(env, name);
  return raw === undefined ? undefined : proxyUrl(raw, name);
}

/** How remote `Src` of response files are fetched: scheme and addresses allowed, proxy. */
export function remoteSrcOptionsOf(
  config: Pick<Config, 'httpsProxy' | 'noProxy' | 'remoteSrcAddresses' | 'remoteSrcAllowHttp'>,
): { proxy: WebProxy | undefined; remoteAddresses: AddressPolicy; remoteAllowHttp: boolean } {
  return {
    proxy: webProxyOf(config),
    remoteAddresses: config.remoteSrcAddresses,
    remoteAllowHttp: config.remoteSrcAllowHttp,
  };
}

/** The proxy of the engine's own HTTP(S) requests, with the hosts it bypasses; none when not configured. */
export function webProxyOf(config: Pick<Config, 'httpsProxy' | 'noProxy'>): WebProxy | undefined {
  return config.httpsProxy && { url: config.httpsProxy, bypass: config.noProxy };
}

/** Hosts reached directly when MAILROOM_NO_PROXY is not set: this machine (never via a proxy). */
export const DEFAULT_NO_PROXY = 'localhost,127.0.0.0/8,::1';

function proxyBypassVar(env: Env, name: string): ProxyBypass {
  const raw = nonEmpty(env, name) ?? DEFAULT_NO_PROXY;
  try {
    return ProxyBypass.parse(raw);
  } catch (err) {
    if (!(err instanceof ProxyBypassError)) throw err;
    throw new MailroomError(
      'CONFIG_INVALID',
      `${name} must be comma-separated host names, IP addresses, CIDR ranges or '*': ${err.message}`,
      { field: name },
    );
  }
}

/** `name=url[,name=url…]` of MAILROOM_PROXIES. */
function namedProxiesVar(env: Env, name: string): Map<string, URL> {
  const proxies = new Map<string, URL>();
  for (const entry of (nonEmpty(env, name) ?? '').split(',')) {
    if (entry.trim() === '') continue;
    const eq = entry.indexOf('=');
    const proxyName = eq < 0 ? '' : entry.slice(0, eq).trim();
    if (!PROXY_NAME.test(proxyName) || proxyName === NO_PROXY || proxies.has(proxyName)) {
      throw new MailroomError(
        'CONFIG_INVALID',
        `${name} must be name=http://[user:password@]host:port, comma-separated, each name once, ` +
          `of letters, digits, '.', '_' and '-' and not '${NO_PROXY}' (got the name '${proxyName}')`,
        { field: name },
      );
    }
    proxies.set(proxyName, proxyUrl(entry.slice(eq + 1).trim(), name, `${name} (${proxyName})`));
  }
  return proxies;
}

function proxyUrl(raw: string, name: string, label: string = name): URL {
  let url: URL | undefined;
  try {
    url = new URL(raw);
  } catch {
    url = undefined;
  }
  if (!url || url.protocol !== 'http:' || url.hostname === '' || (url.pathname !== '/' && url.pathname !== '')) {
    // The value may hold the proxy's password: only what comes after it is shown.
    const shown = raw.includes('@') ? `…@${raw.slice(raw.lastIndexOf('@') + 1)}` : raw;
    throw new MailroomError('CONFIG_INVALID', `${label} must be http://[user:password@]host:port (got '${shown}')`, {
      field: name,
    });
  }
  return url;
}

/** The PEM text of a CA file the operator names: read now, and refused unless it holds a certificate. */
function caFileVar(env: Env, name: string, cwd: string): string | undefined {
  const file = nonEmpty(env, name);
  if (file === undefined) return undefined;
  const path = resolve(cwd, file);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new MailroomError('CONFIG_INVALID', `${name}: ${path} cannot be read (${(err as Error).message})`, {
      field: name,
    });
  }
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  try {
    if (blocks.length === 0) throw new Error('no PEM certificate in it');
    for (const block of blocks) new X509Certificate(block);
  } catch (err) {
    throw new MailroomError(
      'CONFIG_INVALID',
      `${name}: ${path} is not a PEM certificate file (${(err as Error).message})`,
      {
        field: name,
      },
    );
  }
  return blocks.join('\n');
}

/** A domain name for the right of `@` in Message-IDs: dot-separated labels, not an IP address (RFC 5322 dot-atom). */
function messageIdDomainVar(env: Env, name: string): string | null {
  const raw = nonEmpty(env, name);
  if (raw === undefined) return null;
  if (isIP(raw) !== 0 || !raw.includes('.') || raw.endsWith('.') || !isHost(raw)) {
    throw new MailroomError(
      'CONFIG_INVALID',
      `${name} must be a domain name such as mail.example.com (letters, digits and '-' in dot-separated labels; got '${raw}')`,
      { field: name },
    );
  }
  return raw;
}

function nonEmpty(env: Env, name: string): string | undefined {
  const raw = env[name]?.trim();
  return raw === undefined || raw === '' ? undefined : raw;
}

/** Reads `MAILROOM_*` variables. Throws CONFIG_INVALID naming the variable at fault. */
export function loadConfig(env: Env = process.env, cwd: string = process.cwd()): Config {
  const databaseUrl = nonEmpty(env, 'MAILROOM_DATABASE_URL');
  if (databaseUrl !== undefined && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new MailroomError('CONFIG_INVALID', 'MAILROOM_DATABASE_URL must start with postgres:// or postgresql://', {
      field: 'MAILROOM_DATABASE_URL',
    });
  }
  const httpHost = nonEmpty(env, 'MAILROOM_HTTP_HOST') ?? '127.0.0.1';
  if (!isHost(httpHost)) {
    throw new MailroomError(
      'CONFIG_INVALID',
      `MAILROOM_HTTP_HOST must be a host name or IP address (got '${httpHost}')`,
      {
        field: 'MAILROOM_HTTP_HOST',
      },
    );
  }
  const logLevel = nonEmpty(env, 'MAILROOM_LOG_LEVEL') ?? 'info';
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new MailroomError('CONFIG_INVALID', `MAILROOM_LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}`, {
      field: 'MAILROOM_LOG_LEVEL',
    });
  }
  return {
    databaseUrl,
    dataDir: resolve(cwd, nonEmpty(env, 'MAILROOM_DATA_DIR') ?? 'data'),
    spoolDir: resolve(cwd, nonEmpty(env, 'MAILROOM_SPOOL_DIR') ?? 'spool'),
    templatesDir: resolve(cwd, nonEmpty(env, 'MAILROOM_TEMPLATES_DIR') ?? 'templates'),
    caDir:
      nonEmpty(env, 'MAILROOM_CA_DIR') === undefined
        ? undefined
        : resolve(cwd, nonEmpty(env, 'MAILROOM_CA_DIR') as string),
    templatesRemoteSrc: boolVar(env, 'MAILROOM_TEMPLATES_REMOTE_SRC', false),
    remoteSrcAddresses: addressPolicyVar(env, 'MAILROOM_REMOTE_SRC_ALLOW_PRIVATE'),
    remoteSrcAllowHttp: boolVar(env, 'MAILROOM_REMOTE_SRC_ALLOW_HTTP', false),
    webhookAddresses: addressPolicyVar(env, 'MAILROOM_WEBHOOK_ALLOW_PRIVATE'),
    oauthAddresses: addressPolicyVar(env, 'MAILROOM_OAUTH_ALLOW_PRIVATE'),
    oauthCa: caFileVar(env, 'MAILROOM_OAUTH_CA_FILE', cwd),
    mailAddresses: addressPolicyVar(env, 'MAILROOM_MAIL_ALLOW_PRIVATE'),
    httpsProxy: proxyVar(env, 'MAILROOM_HTTPS_PROXY'),
    noProxy: proxyBypassVar(env, 'MAILROOM_NO_PROXY'),
    mailProxies: { default: proxyVar(env, 'MAILROOM_MAIL_PROXY'), named: namedProxiesVar(env, 'MAILROOM_PROXIES') },
    secretKey: nonEmpty(env, 'MAILROOM_SECRET_KEY'),
    previousSecretKeys: (nonEmpty(env, 'MAILROOM_PREVIOUS_SECRET_KEYS') ?? '')
      .split(',')
      .map((k) => k.trim())
      .filter((k) => k !== ''),
    apiToken: nonEmpty(env, 'MAILROOM_API_TOKEN'),
    httpHost,
    httpPort: intVar(env, 'MAILROOM_HTTP_PORT', 8025, 0, 65535),
    logLevel,
    logPretty: boolVar(env, 'MAILROOM_LOG_PRETTY', Boolean(process.stdout.isTTY)),
    shutdownTimeoutMs: intVar(env, 'MAILROOM_SHUTDOWN_TIMEOUT_MS', 10_000, 0, 600_000),
    waitsPerToken: intVar(env, 'MAILROOM_WAITS_PER_TOKEN', 200, 1, 1_000_000),
    waitsPerTenant: intVar(env, 'MAILROOM_WAITS_PER_TENANT', 1_000, 1, 1_000_000),
    rateLimitPerToken: intVar(env, 'MAILROOM_RATE_LIMIT_PER_TOKEN', 6_000, 0, 100_000_000),
    rateLimitPerAddress: intVar(env, 'MAILROOM_RATE_LIMIT_PER_ADDRESS', 300, 0, 100_000_000),
    webhookTimeoutMs: intVar(env, 'MAILROOM_WEBHOOK_TIMEOUT_MS', 10_000, 100, 120_000),
    instanceId: nonEmpty(env, 'MAILROOM_INSTANCE_ID') ?? hostname(),
    leaseTtlMs: intVar(env, 'MAILROOM_LEASE_TTL_MS', 20_000, 1_000, 600_000),
    messageIdDomain: messageIdDomainVar(env, 'MAILROOM_MESSAGE_ID_DOMAIN'),
    sources: loadSourceConfig(env, cwd),
    retention: {
      intervalMs: intVar(env, 'MAILROOM_RETENTION_INTERVAL_MS', 3_600_000, 1_000, 604_800_000),
      waitingFloorDays: intVar(env, 'MAILROOM_RETENTION_WAITING_FLOOR_DAYS', 30, 0, 36_500),
    },
    imap: {
      ...optionalInt(env, 'MAILROOM_IMAP_POLL_INTERVAL_MS', 'pollIntervalMs', 100, 86_400_000),
      ...optionalInt(env, 'MAILROOM_IMAP_SAFETY_POLL_MS', 'safetyPollMs', 1_000, 3_600_000),
      ...optionalInt(env, 'MAILROOM_RECONCILE_INTERVAL_MS', 'reconcileIntervalMs', 100, 3_600_000),
      ...optionalInt(env, 'MAILROOM_MAX_MESSAGE_BYTES', 'maxMessageBytes', 1_024, 1_073_741_824),
      ...optionalInt(env, 'MAILROOM_IMAP_BATCH_MESSAGES', 'batchMaxCount', 1, 10_000),
      ...(nonEmpty(env, 'MAILROOM_IMAP_FETCH_MEMORY_MB') !== undefined && {
        fetchMemoryBytes: intVar(env, 'MAILROOM_IMAP_FETCH_MEMORY_MB', 256, 1, 1_048_576) * 1024 * 1024,
      }),
      ...((nonEmpty(env, 'MAILROOM_IMAP_CONNECT_CONCURRENCY') || nonEmpty(env, 'MAILROOM_IMAP_CONNECTS_PER_HOST')) && {
        connectLimits: {
          concurrency: intVar(env, 'MAILROOM_IMAP_CONNECT_CONCURRENCY', 32, 1, 10_000),
          perHost: intVar(env, 'MAILROOM_IMAP_CONNECTS_PER_HOST', 8, 1, 10_000),
        },
      }),
    },
  };
}
