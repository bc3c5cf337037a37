import fastifyRateLimit, { normalizeIP } from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { MailroomError } from '../shared/errors.js';

/**
 * Request rate limits of the HTTP API (issue #24): each API token, and each client address for
 * requests that carry no valid token. The counting is @fastify/rate-limit's (its in-memory store:
 * the limits are per engine instance); this file is its only adapter.
 *
 * - Per token: every request of a token counts, long polls and event streams included (a long
 *   poll that answers at once is a plain read). The administrator token of the configuration
 *   (MAILROOM_API_TOKEN) is not limited: it is the operator's own, and the engine's tools and
 *   benchmarks drive it at full speed.
 * - Per address: a failed authentication (no token, a wrong or revoked one) and each request to a
 *   public route but the health probes count; once an address is over its limit, its requests
 *   without a valid token are answered 429 until its window ends. A request with a valid token is
 *   never refused for its address (many clients share one behind a NAT or a reverse proxy), and
 *   `/healthz` and `/readyz` are never limited (a load balancer's probes must always get through).
 */
export interface RateLimits {
  /** Requests one API token may make per window; 0: no limit. */
  perToken: number;
  /** Requests without a valid token (failed authentications, public routes) one address may make per window; 0: no limit. */
  perAddress: number;
  /** [60000] the window the counts are kept for, ms (a fixed window per key). */
  windowMs?: number;
}

/** [60000] ms: a minute, the window of both limits. */
export const RATE_LIMIT_WINDOW_MS = 60_000;
/** [/64] IPv6 addresses of one /64 count as one client (one host usually has a whole /64). */
const IPV6_SUBNET = 64;

type Check = (request: FastifyRequest, increment?: boolean) => Promise<void>;

export interface RateLimiter {
  /** Counts a request of an authenticated token; throws RATE_LIMITED beyond the limit. */
  token(request: FastifyRequest, tokenId: string): Promise<void>;
  /** Throws RATE_LIMITED when the address is already over its limit (counts nothing). */
  addressAlreadyLimited(request: FastifyRequest): Promise<void>;
  /** Counts a request without a valid token; throws RATE_LIMITED beyond the limit. */
  address(request: FastifyRequest): Promise<void>;
}

const tokenKey = Symbol('rateLimitToken');
type KeyedRequest = FastifyRequest & { [tokenKey]?: string };

function limited(who: string, max: number, windowMs: number, ttlSeconds: number): MailroomError {
  const retry = Math.max(1, ttlSeconds);
  return new MailroomError(
    'RATE_LIMITED',
    `${who} has made more than ${max} requests in ${Math.round(windowMs / 1000)} s, the most it may; retry in ${retry} s`,
    { retryAfterSeconds: retry, details: { limit: max, windowSeconds: Math.round(windowMs / 1000) } },
  );
}

/** Registers the plugin (applied to no route by itself) and returns the checks the routes run. */
export async function registerRateLimits(app: FastifyInstance, limits: RateLimits): Promise<RateLimiter> {
  const windowMs = limits.windowMs ?? RATE_LIMIT_WINDOW_MS;
  await app.register(fastifyRateLimit, { global: false, timeWindow: windowMs });
  const check = (max: number, keyGenerator: (r: FastifyRequest) => string, who: (key: string) => string): Check => {
    if (max <= 0) return async () => undefined;
    const limiter = app.createRateLimit({ max, timeWindow: windowMs, keyGenerator });
    return async (request, increment = true) => {
      const state = await limiter(request, { increment });
      if (state.isAllowed) return; // on no allow list: not taken
      // Counting, this request is over the limit; peeking, the next one would be.
      const over = increment ? state.isExceeded : state.remaining <= 0;
      if (over) throw limited(who(state.key), max, windowMs, state.ttlInSeconds);
    };
  };
  const byToken = check(
    limits.perToken,
    (r) => `token:${(r as KeyedRequest)[tokenKey] ?? ''}`,
    () => 'this API token',
  );
  const byAddress = check(
    limits.perAddress,
    (r) => `address:${normalizeIP(r.ip, IPV6_SUBNET)}`,
    () => 'this address, without a valid API token,',
  );
  return {
    token: (request, tokenId) => {
      (request as KeyedRequest)[tokenKey] = tokenId;
      return byToken(request);
    },
    addressAlreadyLimited: (request) => byAddress(request, false),
    address: (request) => byAddress(request),
  };
}
