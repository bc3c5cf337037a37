import type { TSchema } from '@sinclair/typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Accounts, Principal } from '../accounts/index.js';
import type { WatcherStatus } from '../inbound/server-watcher.js';
import type { MessageFeed } from '../inbound/message-feed.js';

/**
 * Who may call a route: anyone (`public`), the administrator only (`admin`), or also a token
 * scoped to the tenant named in the path (`tenant`; another tenant's ids answer 404).
 */
export type Access = 'public' | 'admin' | 'tenant';

/** What the API needs of the inbound side. */
export interface InboundApi {
  status(serverId: string): WatcherStatus;
  feed: MessageFeed;
}

export interface RouteContext {
  accounts: Accounts;
  inbound: InboundApi;
  /** The OpenAPI document of every declared route. */
  openapi: () => unknown;
}

export interface RouteRequest extends FastifyRequest {
  principal?: Principal;
}

export interface RouteDef {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  url: string;
  access: Access;
  summary: string;
  tags: string[];
  schema: {
    params?: TSchema;
    querystring?: TSchema;
    body?: TSchema;
    /** Status code → response body schema. Responses are serialized through these: unknown fields never leave. */
    response: Record<number, TSchema>;
  };
  handler: (request: RouteRequest, reply: FastifyReply, ctx: RouteContext) => Promise<unknown>;
}

/** The principal of a request that passed authentication. */
export function principalOf(request: RouteRequest): Principal {
  if (!request.principal) throw new Error('route reached without authentication');
  return request.principal;
}
