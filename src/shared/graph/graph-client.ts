import { AddressPolicy } from '../address-policy.js';
import { proxyFor, type MailProxies } from '../mail-proxies.js';
import { readCaFile } from '../ca-file.js';
import { httpExchange, type HttpAnswer, type HttpRequest } from '../http-exchange.js';
import type { WebProxy } from '../web-proxy.js';

/**
 * The engine's one Microsoft Graph client (mail only): delta queries over a folder's messages,
 * each message's MIME source, the post-processing actions and `sendMail` with MIME. Requests go
 * through `httpExchange` (proxy, private CA, address policy, time and size bounds); nothing here
 * retries: a `GraphError` says what the service answered, and its caller decides.
 */

/** [100] messages per delta page asked for with `Prefer: odata.maxpagesize` (the service may send fewer). */
export const DEFAULT_DELTA_PAGE_SIZE = 100;
/** [30000] budget of one request, ms. */
export const DEFAULT_GRAPH_TIMEOUT_MS = 30_000;
/** [1 MiB] largest JSON answer read (a delta page of ids is a few tens of KiB). */
const JSON_MAX_BYTES = 1024 * 1024;

export interface GraphClientOptions {
  /** `https://graph.microsoft.com` (or a national cloud's, or the fake's), without a path. */
  baseUrl: string;
  /** The mailbox: a user id or user principal name (`/users/{id}`). */
  mailbox: string;
  /** A Graph access token (delegated or app-only). */
  accessToken: string;
  /** [30000] budget of one request, ms. */
  timeoutMs?: number;
  /** Largest MIME source read; a longer one fails with code ETOOLARGE. */
  maxSourceBytes: number;
  /** Extra CA certificates (PEM) trusted for these requests. */
  ca?: string | undefined;
  proxy?: WebProxy | undefined;
  /** The addresses these requests may reach (a tenant's own hosts); any when absent. */
  addresses?: AddressPolicy | undefined;
}

/** One change of a delta page: a message present in the folder, or one removed from it. */
export interface DeltaItem {
  id: string;
  /** `@removed` present: deleted or moved out of the folder. */
  removed: boolean;
  receivedAt: Date | null;
}

export interface DeltaPage {
  items: DeltaItem[];
  /** More pages in this round: ask this URL next. */
  nextLink: string | null;
  /** The round is over: ask this URL for the next round's changes. */
  deltaLink: string | null;
}

/**
 * An answer other than success. `status` is the HTTP status; `code` Graph's error code
 * (`TooManyRequests`, `SyncStateNotFound`, `ErrorItemNotFound` …); `retryAfterMs` the
 * `Retry-After` header of a 429 or 503, when given
 * (https://learn.microsoft.com/graph/throttling: "a suggested wait time is returned in the
 * response header of the failed request"). `responseCode` maps the status onto SMTP-like codes
 * for the delivery classifier: 535 for 401 and 530 for 403 (the account's credentials or
 * permissions), 421 for 429/503 (the service asks to wait), other 4xx→550 (refused for good), 5xx→451.
 */
export class GraphError extends Error {
  readonly responseCode: number;
  constructor(
    message: string,
    readonly status: number,
    readonly graphCode: string,
    readonly retryAfterMs: number | null,
    readonly response: string,
  ) {
    super(message);
    this.name = 'GraphError';
    this.responseCode = smtpLikeCode(status);
  }

  /** The delta token is no longer known: start the folder's synchronisation over. */
  get syncStateLost(): boolean {
    return this.status === 410 || /^syncstatenotfound$|^syncstateinvalid$/i.test(this.graphCode);
  }

  /** The access token was refused. */
  get unauthorized(): boolean {
    return this.status === 401;
  }

  get code(): string {
    return this.status === 401 ? 'EAUTH' : `GRAPH_${this.status}`;
  }
}

function smtpLikeCode(status: number): number {
  if (status === 401) return 535;
  // Forbidden: the app or account may not send as this mailbox (permissions, an application
  // access policy): the account's problem, not the message's.
  if (status === 403) return 530;
  if (status === 429 || status === 503) return 421;
  if (status >= 500) return 451;
  return 550;
}

/** `Retry-After` in seconds (what Graph sends) or an HTTP date, as ms; null when absent or unreadable. */
export function retryAfterMsOf(value: string | undefined, now = Date.now()): number | null {
  if (value === undefined || value.trim() === '') return null;
  const seconds = Number(value.trim());
  if (Number.isFinite(seconds) && seconds >= 0) return Math.round(seconds * 1000);
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

/** The well-known folder name for a watched mailbox name (`INBOX` → `inbox`); others are used as they are. */
export function graphFolderOf(mailbox: string): string {
  return mailbox.toUpperCase() === 'INBOX' ? 'inbox' : mailbox;
}

export class GraphClient {
  private readonly base: string;

  constructor(private readonly options: GraphClientOptions) {
    this.base = `${options.baseUrl.replace(/\/+$/, '')}/v1.0/users/${encodeURIComponent(options.mailbox)}`;
  }

  /**
   * The first request of a folder's synchronisation: ids and arrival times only
   * (https://learn.microsoft.com/graph/api/message-delta: `GET /users/{id}/mailFolders/{id}/messages/delta`,
   * query options given once, then encoded by the service into the next and delta links).
   */
  deltaStart(folder: string): string {
    return `${this.base}/mailFolders/${encodeURIComponent(folder)}/messages/delta?$select=id,receivedDateTime`;
  }

  /**
   * One page of a delta round: `@odata.nextLink` while the round goes on, `@odata.deltaLink` at its
   * end, never both (https://learn.microsoft.com/graph/delta-query-overview).
   * `Prefer: odata.maxpagesize` bounds the page (https://learn.microsoft.com/graph/delta-query-messages);
   * `IdType="ImmutableId"` keeps a message's id when it is moved
   * (https://learn.microsoft.com/graph/outlook-immutable-id), so that it is recognised as stored.
   */
  async delta(link: string, pageSize = DEFAULT_DELTA_PAGE_SIZE): Promise<DeltaPage> {
    const answer = await this.send(link, {
      headers: { prefer: `odata.maxpagesize=${pageSize}, IdType="ImmutableId"` },
      maxBytes: JSON_MAX_BYTES,
    });
    const body = JSON.parse(answer.body.toString('utf8')) as {
      value?: Array<{ id?: unknown; receivedDateTime?: unknown; '@removed'?: unknown }>;
      '@odata.nextLink'?: unknown;
      '@odata.deltaLink'?: unknown;
    };
    const items: DeltaItem[] = [];
    for (const v of body.value ?? []) {
      if (typeof v.id !== 'string') continue;
      const received = typeof v.receivedDateTime === 'string' ? new Date(v.receivedDateTime) : null;
      items.push({
        id: v.id,
        removed: v['@removed'] !== undefined,
        receivedAt: received && !Number.isNaN(received.getTime()) ? received : null,
      });
    }
    const link_ = (x: unknown): string | null => (typeof x === 'string' ? x : null);
    return { items, nextLink: link_(body['@odata.nextLink']), deltaLink: link_(body['@odata.deltaLink']) };
  }

  /** A message's MIME source (https://learn.microsoft.com/graph/api/message-get: `GET …/messages/{id}/$value`). */
  async source(id: string): Promise<Buffer> {
    const answer = await this.send(`${this.base}/messages/${encodeURIComponent(id)}/$value`, {
      headers: { prefer: 'IdType="ImmutableId"' },
      maxBytes: this.options.maxSourceBytes,
    });
    return answer.body;
  }

  /** Marks a message read (https://learn.microsoft.com/graph/api/message-update: `PATCH {"isRead": true}`). */
  async markRead(id: string): Promise<void> {
    await this.send(`${this.base}/messages/${encodeURIComponent(id)}`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ isRead: true }),
      maxBytes: JSON_MAX_BYTES,
    });
  }

  /**
   * Moves a message to a folder given by id or well-known name (https://learn.microsoft.com/graph/api/message-move:
   * `POST …/messages/{id}/move {"destinationId"}`, 201 with the moved message).
   */
  async move(id: string, folder: string): Promise<void> {
    await this.send(`${this.base}/messages/${encodeURIComponent(id)}/move`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', prefer: 'IdType="ImmutableId"' },
      body: JSON.stringify({ destinationId: folder }),
      maxBytes: JSON_MAX_BYTES,
    });
  }

  /** Deletes a message (https://learn.microsoft.com/graph/api/message-delete: 204); one already gone counts as deleted. */
  async delete(id: string): Promise<void> {
    try {
      await this.send(`${this.base}/messages/${encodeURIComponent(id)}`, {
        method: 'DELETE',
        maxBytes: JSON_MAX_BYTES,
      });
    } catch (err) {
      if (err instanceof GraphError && err.status === 404) return;
      throw err;
    }
  }

  /**
   * Sends a MIME message as it is (https://learn.microsoft.com/graph/api/user-sendmail: the MIME
   * content base64-encoded as the body, `Content-Type: text/plain`; 202 Accepted). Its headers
   * (From, Message-ID, In-Reply-To, References) stay as written; the recipients are those of its
   * To, Cc and Bcc headers.
   */
  async sendMime(raw: Buffer): Promise<void> {
    await this.send(`${this.base}/sendMail`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: raw.toString('base64'),
      maxBytes: JSON_MAX_BYTES,
    });
  }

  /** Whether the token opens the mailbox: the Inbox folder's own record. */
  async probe(): Promise<void> {
    await this.send(`${this.base}/mailFolders/inbox?$select=id`, { maxBytes: JSON_MAX_BYTES });
  }

  private async send(
    url: string,
    req: Pick<HttpRequest, 'method' | 'body' | 'maxBytes'> & { headers?: Record<string, string> },
  ): Promise<HttpAnswer> {
    const answer = await httpExchange(new URL(url), {
      ...req,
      headers: { authorization: `Bearer ${this.options.accessToken}`, accept: 'application/json', ...req.headers },
      timeoutMs: this.options.timeoutMs ?? DEFAULT_GRAPH_TIMEOUT_MS,
      ca: this.options.ca,
      proxy: this.options.proxy,
      addresses: this.options.addresses,
    });
    if (answer.status >= 200 && answer.status < 300) return answer;
    throw errorOf(answer, req.method ?? 'GET', url);
  }
}

/** A failed answer as a GraphError: Graph's `{"error": {"code", "message"}}` when the body holds one. */
function errorOf(answer: HttpAnswer, method: string, url: string): GraphError {
  let graphCode = '';
  let detail = '';
  try {
    const body = JSON.parse(answer.body.toString('utf8')) as { error?: { code?: unknown; message?: unknown } };
    graphCode = typeof body.error?.code === 'string' ? body.error.code : '';
    detail = typeof body.error?.message === 'string' ? body.error.message : '';
  } catch {
    detail = answer.body.toString('utf8').slice(0, 200);
  }
  const path = new URL(url).pathname;
  const response = `${answer.status} ${graphCode || 'error'}${detail ? `: ${detail}` : ''}`.slice(0, 1000);
  return new GraphError(
    `Microsoft Graph answered ${method} ${path} with ${response}`,
    answer.status,
    graphCode,
    retryAfterMsOf(answer.headers['retry-after']),
    `Graph ${response}`,
  );
}

/** Where a Graph server's requests go, from its settings (`imap.host`, `imap.port`, `imap.user`, `imap.caFile`). */
export interface GraphPlace {
  host: string;
  port: number;
  mailbox: string;
  caFile: string | null;
  proxy: URL | undefined;
  addresses: AddressPolicy | undefined;
}

/**
 * The Graph place of a server's settings: `imap.host` and `imap.port` the Graph endpoint,
 * `imap.user` the mailbox, `imap.caFile` and `proxy` as for IMAP; a host a tenant chose
 * (`hostsByTenant`) reaches only what MAILROOM_MAIL_ALLOW_PRIVATE allows (public addresses by default).
 */
export function graphPlaceOf(
  server: {
    imapHost: string;
    imapPort: number;
    imapUser: string;
    imapCaFile: string | null;
    proxy: string | null;
    hostsByTenant: boolean;
  },
  proxies: MailProxies | undefined,
  mailAddresses: AddressPolicy | undefined,
): GraphPlace {
  return {
    host: server.imapHost,
    port: server.imapPort,
    mailbox: server.imapUser,
    caFile: server.imapCaFile,
    proxy: proxyFor(server.proxy, proxies),
    addresses: server.hostsByTenant ? (mailAddresses ?? AddressPolicy.strict()) : undefined,
  };
}

/** A client for a server's Graph place and access token; its CA file is read now (a bad one fails here, naming it). */
export async function openGraphClient(
  place: GraphPlace,
  accessToken: string,
  limits: { maxSourceBytes: number; timeoutMs?: number | undefined },
): Promise<GraphClient> {
  const ca = place.caFile === null ? undefined : await readCaFile(place.caFile);
  const host = place.host.includes(':') ? `[${place.host}]` : place.host;
  return new GraphClient({
    baseUrl: `https://${host}${place.port === 443 ? '' : `:${place.port}`}`,
    mailbox: place.mailbox,
    accessToken,
    maxSourceBytes: limits.maxSourceBytes,
    ca,
    proxy: place.proxy && { url: place.proxy },
    addresses: place.addresses,
    ...(limits.timeoutMs !== undefined && { timeoutMs: limits.timeoutMs }),
  });
}
