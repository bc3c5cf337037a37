import fastifySwagger from '@fastify/swagger';
import { createHash, timingSafeEqual } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
} from 'fastify';
import type { ErrorObject } from 'ajv';
import { CONFIGURED_ADMIN_NAME, type Accounts, type Principal } from '../accounts/index.js';
import { runAs, type Actor } from '../shared/actor.js';
import type { OutboundService } from '../outbound/outbound-service.js';
import { ERROR_CODES, isMailroomError, MailroomError, type ErrorCode } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import { isDatabaseUnreachable } from '../store/transient-errors.js';
import { bodyAjv, paramsAjv, validationError, withStorableText } from '../shared/validation.js';
import type { Templates } from '../templates/index.js';
import type { Store } from '../store/store.js';
import { TraceService } from '../trace/trace-service.js';
import { registerJsonBodyParser } from './json-body.js';
import { documentedSchema } from './openapi.js';
import { registerRateLimits, type RateLimiter, type RateLimits } from './rate-limits.js';
import { ROUTES } from './routes/index.js';
import {
  DEFAULT_BODY_LIMIT,
  type InboundApi,
  type OAuthApi,
  type RouteContext,
  type RouteDef,
  type RouteRequest,
} from './route.js';
import { WaitSlots } from './wait-slots.js';

/** [200] long polls and event streams one API token may hold open at once. */
export const DEFAULT_WAITS_PER_TOKEN = 200;
/** [1000] long polls and event streams all of one tenant's tokens may hold open at once. */
export const DEFAULT_WAITS_PER_TENANT = 1000;

export interface ApiOptions {
  accounts: Accounts;
  /** The database, for the message trace's reads. */
  store: Store;
  inbound: InboundApi;
  outbound: OutboundService;
  /** Response files (issue 6); without them the responses routes answer UNAVAILABLE. */
  templates?: Templates;
  /** OAuth 2.0 sign-ins (issue 5); without them the OAuth routes answer UNAVAILABLE. */
  oauth?: OAuthApi;
  /** Webhook status and test sends; without them the webhook routes answer UNAVAILABLE. */
  webhooks?: RouteContext['webhooks'];
  lifecycle?: RouteContext['lifecycle'];
  /** Readiness, metrics and cluster view; without them those routes answer UNAVAILABLE. */
  operations?: RouteContext['operations'];
  logger: Logger;
  /** The administrator token from the configuration (never stored). */
  adminToken: string;
  /** [1048576] largest accepted request body, in bytes. */
  bodyLimit?: number;
  /** [200] long polls and event streams one API token may hold open at once (MAILROOM_WAITS_PER_TOKEN). */
  waitsPerToken?: number;
  /** [1000] long polls and event streams all of one tenant's tokens may hold open at once (MAILROOM_WAITS_PER_TENANT). */
  waitsPerTenant?: number;
  /**
   * Request rate limits per token and per address (MAILROOM_RATE_LIMIT_PER_TOKEN, …_PER_ADDRESS);
   * none: no limits (the engine always passes its configuration's).
   */
  rateLimits?: RateLimits;
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

export function sendError(reply: FastifyReply, err: MailroomError): FastifyReply {
  const body: { code: string; message: string; field?: string; details?: Record<string, unknown> } = {
    code: err.code,
    message: err.message,
  };
  if (err.field !== undefined) body.field = err.field;
  if (err.details !== undefined) body.details = err.details;
  if (err.retryAfterSeconds !== undefined) reply.header('retry-after', String(err.retryAfterSeconds));
  return reply.code(err.status).send({ error: body });
}

/** A URL fastify cannot route (bad percent-encoding, a path segment over 100 characters). */
function frameworkError(err: FastifyError): MailroomError {
  if (err.code === 'FST_ERR_MAX_PARAM_LENGTH') {
    return new MailroomError('VALIDATION_FAILED', 'a path segment is longer than 100 characters: no id is', {
      field: 'url',
    });
  }
  return new MailroomError('MALFORMED_REQUEST', 'the URL cannot be decoded (malformed percent-encoding)', {
    field: 'url',
  });
}

/**
 * A request Node's HTTP parser refused (malformed, headers too large, too slow): answered in the
 * API's error shape, then the connection is closed, as Node and fastify do by default.
 */
function answerClientError(err: Error & { code?: string }, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const error =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? new MailroomError('HEADERS_TOO_LARGE', 'the request headers are larger than 16 KiB')
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? new MailroomError('REQUEST_TIMEOUT', 'the request was not received in time')
        : new MailroomError('MALFORMED_REQUEST', 'the request is not valid HTTP/1.1');
  const body = JSON.stringify({ error: { code: error.code, message: error.message } });
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status] ?? ''}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
        `Content-Type: application/json; charset=utf-8\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(err);
}

/** Turns whatever a handler or fastify threw into the API's error shape. */
function toMailroomError(err: FastifyError | Error): MailroomError {
  if (isMailroomError(err)) return err;
  const fe = err as FastifyError & { validation?: ErrorObject[]; validationContext?: string };
  if (fe.validation) {
    const converted = validationError(fe.validation);
    // The body itself at fault (missing, an array, a string): named as `body`, never as "".
    if (fe.validationContext === 'body' && converted.field === '') {
      return new MailroomError('VALIDATION_FAILED', 'the request body must be a JSON object', { field: 'body' });
    }
    return converted;
  }
  const byStatus: Record<number, ErrorCode> = {
    400: 'VALIDATION_FAILED',
    413: 'PAYLOAD_TOO_LARGE',
    415: 'UNSUPPORTED_MEDIA_TYPE',
    404: 'NOT_FOUND',
  };
  const code = fe.statusCode !== undefined ? byStatus[fe.statusCode] : undefined;
  if (code === 'VALIDATION_FAILED') {
    return new MailroomError(code, `the request body is not valid JSON: ${fe.message}`, { field: 'body' });
  }
  if (code) return new MailroomError(code, ERROR_CODES[code].text);
  if (isDatabaseUnreachable(err)) {
    return new MailroomError(
      'DATABASE_UNAVAILABLE',
      'the database cannot be reached: try again shortly (the engine reconnects to it by itself)',
      { cause: err },
    );
  }
  return new MailroomError('INTERNAL', 'an internal error occurred; the engine log has the details', { cause: err });
}

/**
 * A refused body's schema faults and the route's cross-field faults (`bodyFaults`), together in
 * the shape of `validationError`: `field` the first, `details.errors` each. Params or a query
 * string at fault: as it is.
 */
function withBodyFaults(
  err: MailroomError,
  invalid: { validationContext?: string },
  route: RouteDef,
  body: unknown,
): MailroomError {
  if (invalid.validationContext !== 'body' || !route.bodyFaults || err.code !== 'VALIDATION_FAILED') return err;
  const listed = (err.details?.errors as Array<{ field: string; message: string }> | undefined) ?? [
    { field: err.field ?? 'body', message: err.message },
  ];
  const faults = [...listed];
  for (const f of route.bodyFaults(body)) if (!faults.some((g) => g.field === f.field)) faults.push(f);
  if (faults.length === listed.length) return err;
  const [first] = faults as [{ field: string; message: string }];
  return new MailroomError('VALIDATION_FAILED', faults.map((f) => f.message).join('; '), {
    field: first.field,
    details: { errors: faults },
  });
}

/** Builds the HTTP API: every route of ROUTES with its schema, access rule and error mapping. */
export async function buildApi(options: ApiOptions): Promise<FastifyInstance> {
  const { accounts, logger } = options;
  const adminHash = sha256(options.adminToken);
  const app = Fastify({
    loggerInstance: logger.child({ component: 'api' }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    // No child logger per request (pino makes one for every request: 9 µs, about 1 % of an
    // accepted message); the one line a request logs carries the request id itself.
    childLoggerFactory: (logger) => logger,
    bodyLimit: options.bodyLimit ?? DEFAULT_BODY_LIMIT,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    // What fastify refuses before any route runs answers in the API's error shape too.
    frameworkErrors: (err, _request, reply) => sendError(reply, frameworkError(err)),
    clientErrorHandler: answerClientError,
  });

  registerJsonBodyParser(app);

  app.setValidatorCompiler(({ schema, httpPart }) => {
    const ajv = httpPart === 'body' ? bodyAjv : paramsAjv;
    // Text PostgreSQL cannot store (a NUL, a lone surrogate) is refused here, naming the field, for every route.
    return withStorableText(ajv.compile(schema as object)) as ReturnType<
      Parameters<typeof app.setValidatorCompiler>[0]
    >;
  });

  const routesByKey = new Map(ROUTES.map((r) => [`${r.method} ${r.url}`, r]));
  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Mailroom',
        version: '1',
        description: 'E-mail channel engine: tenants, e-mail servers, destinations.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    },
    // Each route's error responses, media type and headers (api/openapi.ts); the document only.
    transform: ({ schema, url, route }) => {
      const method = Array.isArray(route.method) ? route.method[0] : route.method;
      const def = routesByKey.get(`${String(method)} ${url}`);
      return { schema: def && schema ? documentedSchema(def, schema) : schema, url };
    },
  });

  const limits = options.rateLimits ? await registerRateLimits(app, options.rateLimits) : null;

  const authenticate = async (request: RouteRequest): Promise<Principal> => {
    if (!limits) return authenticateToken(request);
    // An address over its limit for requests without a valid token is answered at once when the
    // request carries no token at all; one that carries a token has it looked up first (a wrong
    // one that repeats costs no database read: ApiTokenService remembers it), so that a valid
    // token behind the same address (a NAT, a reverse proxy) is never locked out by others.
    if (!/^Bearer\s+\S/i.test(request.headers.authorization ?? '')) await limits.addressAlreadyLimited(request);
    let principal: Principal;
    try {
      principal = await authenticateToken(request);
    } catch (err) {
      if (isMailroomError(err, 'UNAUTHORIZED')) await limits.address(request);
      throw err;
    }
    // The configuration's administrator token (the operator's own) is not limited.
    if (principal.tokenId !== null) await limits.token(request, principal.tokenId);
    return principal;
  };

  const authenticateToken = async (request: RouteRequest): Promise<Principal> => {
    const header = request.headers.authorization;
    const match = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    if (!match) {
      throw new MailroomError('UNAUTHORIZED', 'send the API token as "Authorization: Bearer <token>"');
    }
    const token = match[1] as string;
    if (timingSafeEqual(sha256(token), adminHash)) return { kind: 'admin', tokenId: null, name: CONFIGURED_ADMIN_NAME };
    const principal = await accounts.apiTokens.resolve(token);
    if (!principal) throw new MailroomError('UNAUTHORIZED', 'the API token is not valid (revoked or mistyped)');
    return principal;
  };

  const ctx: RouteContext = {
    accounts,
    inbound: options.inbound,
    outbound: options.outbound,
    ...(options.templates && { templates: options.templates }),
    ...(options.oauth && { oauth: options.oauth }),
    ...(options.webhooks && { webhooks: options.webhooks }),
    ...(options.lifecycle && { lifecycle: options.lifecycle }),
    ...(options.operations && { operations: options.operations }),
    openapi: () => app.swagger(),
    trace: new TraceService(options.store),
    waits: new WaitSlots(
      options.waitsPerToken ?? DEFAULT_WAITS_PER_TOKEN,
      options.waitsPerTenant ?? DEFAULT_WAITS_PER_TENANT,
    ),
  };

  app.setErrorHandler((err: FastifyError, request, reply) => {
    const full = toMailroomError(err);
    // Only an administrator token learns what other tenants have (names, ids, accounts).
    const error = (request as RouteRequest).principal?.kind === 'admin' ? full : full.forTenantToken();
    if (error.code === 'INTERNAL') {
      request.log.error(
        { err, reqId: request.id, method: request.method, url: request.routeOptions.url },
        'request failed',
      );
    } else if (error.code === 'DATABASE_UNAVAILABLE') {
      const { tenantId, serverId } = (request.params ?? {}) as { tenantId?: string; serverId?: string };
      request.log.warn(
        {
          reqId: request.id,
          method: request.method,
          url: request.routeOptions.url,
          tenantId,
          serverId,
          reason: err.message,
        },
        'request refused: the database cannot be reached',
      );
    }
    return sendError(reply, error);
  });
  // The access log: one line per answered request, with the route (not the URL: no ids or query
  // values), the status, the time taken and the token's name (never the token).
  app.addHook('onResponse', (request: RouteRequest, reply, done) => {
    const principal = request.principal;
    const params = (request.params ?? {}) as { tenantId?: string };
    app.log.info(
      {
        reqId: request.id,
        method: request.method,
        route: request.routeOptions.url ?? '(no route)',
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime * 10) / 10,
        ...(principal && {
          tokenName: principal.name,
          ...(principal.kind === 'tenant' && { tenantId: principal.tenantId }),
        }),
        ...(params.tenantId !== undefined && { tenantId: params.tenantId }),
      },
      'request',
    );
    done();
  });
  app.setNotFoundHandler((request, reply) =>
    sendError(reply, new MailroomError('NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`)),
  );

  for (const route of ROUTES) registerRoute(app, route, ctx, authenticate, limits);
  await app.ready();
  return app;
}

/** The audit log's "who" of a request: its token's id and name. */
export function actorOfPrincipal(principal: Principal): Actor {
  return { kind: 'token', tokenId: principal.tokenId, name: principal.name };
}

function registerRoute(
  app: FastifyInstance,
  route: RouteDef,
  ctx: RouteContext,
  authenticate: (request: RouteRequest) => Promise<Principal>,
  limits: RateLimiter | null,
): void {
  app.route({
    method: route.method,
    url: route.url,
    ...(route.bodyLimit !== undefined && { bodyLimit: route.bodyLimit }),
    schema: {
      summary: route.summary,
      tags: route.tags,
      ...(route.hidden && { hide: true }),
      ...(route.access !== 'public' && { security: [{ bearer: [] }] }),
      ...(route.schema.params && { params: route.schema.params }),
      ...(route.schema.querystring && { querystring: route.schema.querystring }),
      ...(route.schema.body && { body: route.schema.body }),
      response: route.schema.response,
    },
    // Authentication runs before body validation: an anonymous caller learns nothing of the schema.
    onRequest:
      route.access === 'public'
        ? limits && !route.probe
          ? async (request: RouteRequest) => limits.address(request)
          : undefined
        : async (request: RouteRequest) => {
            request.principal = await authenticate(request);
            if (route.access === 'admin' && request.principal.kind !== 'admin') {
              throw new MailroomError('FORBIDDEN', 'this operation needs an administrator token');
            }
          },
    // Scope check after params are validated: a tenant token sees other tenants as absent.
    preHandler:
      route.access === 'tenant'
        ? async (request: RouteRequest) => {
            const principal = request.principal;
            const tenantId = (request.params as { tenantId?: string }).tenantId;
            if (principal?.kind === 'tenant' && tenantId !== undefined && tenantId !== principal.tenantId) {
              throw new MailroomError('TENANT_NOT_FOUND', `tenant ${tenantId} does not exist`);
            }
          }
        : undefined,
    // A body the schema refused is checked by the route's cross-field rules too (one answer, every fault).
    ...(route.bodyFaults && { attachValidation: true }),
    // Changes a handler makes are audited as the token's (src/shared/actor.ts).
    handler: (request, reply) => {
      const invalid = (request as { validationError?: FastifyError & { validationContext?: string } }).validationError;
      if (invalid) throw withBodyFaults(toMailroomError(invalid), invalid, route, request.body);
      const principal = (request as RouteRequest).principal;
      const run = () => route.handler(request as RouteRequest, reply, ctx);
      return principal ? runAs(actorOfPrincipal(principal), run) : run();
    },
  });
}
