import type { TSchema } from '@sinclair/typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Accounts, Principal } from '../accounts/index.js';
import type { OAuthService } from '../auth/oauth/index.js';
import type { ClusterView } from '../cluster/lease-keeper.js';
import type { WatcherStatus } from '../inbound/server-watcher.js';
import type { HeldMail } from '../inbound/held-mail.js';
import type { MessageFeed } from '../inbound/message-feed.js';
import type { Webhooks } from '../inbound/webhooks/index.js';
import type { ConnectionTestResult } from '../shared/connection-test.js';
import type { ErrorCode } from '../shared/errors.js';
import type { Templates } from '../templates/index.js';
import type { OutboundService } from '../outbound/outbound-service.js';
import type { TraceService } from '../trace/trace-service.js';
import type { Lifecycle } from '../lifecycle/index.js';
import type { WaitSlots } from './wait-slots.js';

/**
 * Who may call a route: anyone (`public`), the administrator only (`admin`), or also a token
 * scoped to the tenant named in the path (`tenant`; another tenant's ids answer 404).
 */
export type Access = 'public' | 'admin' | 'tenant';

/** [1048576] largest request body a route takes unless it says otherwise (`RouteDef.bodyLimit`), bytes. */
export const DEFAULT_BODY_LIMIT = 1_048_576;

/** What the API needs of the inbound side. */
export interface InboundApi {
  status(serverId: string): WatcherStatus;
  feed: MessageFeed;
  /** Unrouted and quarantined mail: route, release, delete. */
  held: HeldMail;
  /** "Test connection", IMAP side (connect, log in, log out). */
  testConnection(tenantId: string, serverId: string): Promise<ConnectionTestResult>;
}

/** What the API needs of OAuth 2.0: device-code sign-in and the sign-in status. */
export type OAuthApi = Pick<OAuthService, 'startDeviceCode' | 'status' | 'test'>;

/** Readiness, metrics and the instances sharing the database (the engine provides them). */
export interface OperationsApi {
  readiness(): Promise<{ ready: boolean; checks: Array<{ name: string; ok: boolean; detail: string }> }>;
  metrics(): Promise<{ contentType: string; body: string }>;
  cluster(): Promise<ClusterView>;
  /** Which instance watches a server's mailbox. */
  watcherOf(serverId: string): Promise<{ instanceId: string; thisInstance: boolean } | null>;
}

export interface RouteContext {
  accounts: Accounts;
  inbound: InboundApi;
  /** Absent where OAuth 2.0 is not wired (its routes answer UNAVAILABLE). */
  oauth?: OAuthApi;
  outbound: OutboundService;
  /** Response files; routes answer UNAVAILABLE when the engine was built without them. */
  templates?: Templates;
  /** Webhook status and test sends; routes answer UNAVAILABLE without them. */
  webhooks?: Pick<Webhooks, 'status' | 'test'>;
  /** Absent in an API built without an engine (readiness and metrics answer UNAVAILABLE). */
  operations?: OperationsApi;
  /** Retention, erasures, storage figures; their routes answer UNAVAILABLE without it. */
  lifecycle?: Lifecycle;
  /** The OpenAPI document of every declared route. */
  openapi: () => unknown;
  /** Long polls and event streams open per API token. */
  waits: WaitSlots;
  /** The message trace: search and timelines. */
  trace: TraceService;
}

export interface RouteRequest extends FastifyRequest {
  principal?: Principal;
}

export interface RouteDef {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  url: string;
  access: Access;
  summary: string;
  tags: string[];
  /** Left out of the OpenAPI document (the web console's files are not part of the API). */
  hidden?: boolean;
  /**
   * The error codes this route's own work can answer (a name taken, a server still in use), for the
   * OpenAPI document; those of its access, its inputs and the database are added (api/openapi.ts).
   */
  errors?: readonly ErrorCode[];
  /** A health probe (liveness, readiness): never rate limited, a load balancer's checks always get through. */
  probe?: true;
  /**
   * [DEFAULT_BODY_LIMIT] largest request body this route takes, bytes; larger answers 413
   * PAYLOAD_TOO_LARGE (the OpenAPI document says which).
   */
  bodyLimit?: number;
  /** Answers without the database (liveness, the OpenAPI document): never 503 DATABASE_UNAVAILABLE. */
  withoutDatabase?: true;
  /** The media type of a success answer that is not JSON (an event stream, a raw message), for the document. */
  produces?: string;
  /** Request headers the handler reads and checks itself (documented, not validated by the schema). */
  headers?: TSchema;
  /**
   * Cross-field checks of the body (rules its schema cannot say), run on the raw body also when
   * the schema refused it, so that one answer names every field at fault; best effort.
   */
  bodyFaults?: (body: unknown) => Array<{ field: string; message: string }>;
  schema: {
    params?: TSchema;
    querystring?: TSchema;
    body?: TSchema;
    /** Status code → response body schema. Responses are serialized through these: unknown fields never leave. */
    response: Record<number, TSchema>;
  };
  handler: (request: RouteRequest, reply: FastifyReply, ctx: RouteContext) => Promise<unknown>;
}

/**
 * Whether the request's token still stands, asked again before a long poll or an event stream
 * hands out what it waited for: a token revoked (or a tenant deleted) meanwhile gets nothing more.
 * The administrator token of the configuration cannot be revoked.
 */
export async function stillAuthorized(request: RouteRequest, accounts: Accounts): Promise<boolean> {
  const principal = request.principal;
  if (!principal) return false;
  if (principal.kind === 'admin' && principal.tokenId === null) return true;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? '');
  if (!match) return false;
  const now = await accounts.apiTokens.resolve(match[1] as string);
  return now !== undefined && now.tokenId === principal.tokenId;
}

/** The principal of a request that passed authentication. */
export function principalOf(request: RouteRequest): Principal {
  if (!request.principal) throw new Error('route reached without authentication');
  return request.principal;
}
