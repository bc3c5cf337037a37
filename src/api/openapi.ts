import type { FastifySchema } from 'fastify';
import { ERROR_CODES, type ErrorCode } from '../shared/errors.js';
import { DEFAULT_BODY_LIMIT, type RouteDef } from './route.js';

/**
 * What the OpenAPI document says of a route besides its own schema: every error status it can
 * answer, each with the error body (`{"error": {"code", "message", "field", "details"}}`) and the
 * codes that status carries, and the media type of an answer that is not JSON (an event stream,
 * a raw message). The errors are those every route of its kind answers (derived here from its
 * access and its inputs) plus the ones its own work can raise (`errors` on the route).
 */

/** The codes a route answers without declaring them: its access, its inputs, the engine's state. */
function commonCodesOf(route: RouteDef): ErrorCode[] {
  // Every request counts against a rate limit: its token's, or its address's (api/rate-limits.ts).
  const codes: ErrorCode[] = ['INTERNAL', 'RATE_LIMITED'];
  if (route.access !== 'public') codes.push('UNAUTHORIZED');
  if (route.access === 'admin') codes.push('FORBIDDEN');
  // A tenant token naming another tenant's id is told that tenant does not exist (as is a deleted one).
  if (route.url.includes(':tenantId')) codes.push('TENANT_NOT_FOUND');
  const { params, querystring, body } = route.schema;
  if (params || querystring || body || route.headers) codes.push('VALIDATION_FAILED');
  if (body) codes.push('PAYLOAD_TOO_LARGE', 'UNSUPPORTED_MEDIA_TYPE');
  if (!route.withoutDatabase) codes.push('DATABASE_UNAVAILABLE');
  return codes;
}

/** Every error code a route can answer, common and its own, in the error list's order. */
export function errorCodesOf(route: RouteDef): ErrorCode[] {
  const codes = new Set<ErrorCode>([...commonCodesOf(route), ...(route.errors ?? [])]);
  return (Object.keys(ERROR_CODES) as ErrorCode[]).filter((code) => codes.has(code));
}

/** The error body, its `code` limited to `codes`. */
function errorBody(codes: ErrorCode[]): object {
  return {
    type: 'object',
    required: ['error'],
    properties: {
      error: {
        type: 'object',
        required: ['code', 'message'],
        properties: {
          code: { type: 'string', enum: codes },
          message: { type: 'string', description: 'what happened and what to do, for a person' },
          field: { type: 'string', description: 'the input field at fault (dotted path), when one is' },
          details: { type: 'object', additionalProperties: true, description: 'machine-readable facts, when any' },
        },
      },
    },
  };
}

/** Error statuses that may say when to try again. */
const RETRY_AFTER_STATUSES = new Set([429, 503]);

/**
 * The OpenAPI responses of a route's errors, by status; statuses the route declares itself (the
 * readiness check's 503) are left to its own schema.
 */
export function errorResponsesOf(route: RouteDef): Record<string, object> {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of errorCodesOf(route)) {
    const status = ERROR_CODES[code].status;
    if (route.schema.response[status] !== undefined) continue;
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  const responses: Record<string, object> = {};
  for (const [status, codes] of [...byStatus].sort(([a], [b]) => a - b)) {
    responses[String(status)] = {
      description:
        codes.map((code) => `${code}: ${ERROR_CODES[code].text}`).join(' ') +
        (status === 413
          ? ` This route takes request bodies of up to ${route.bodyLimit ?? DEFAULT_BODY_LIMIT} bytes.`
          : ''),
      content: { 'application/json': { schema: errorBody(codes) } },
      ...(RETRY_AFTER_STATUSES.has(status) && {
        headers: { 'retry-after': { type: 'integer', description: 'seconds after which to try again (when given)' } },
      }),
    };
  }
  return responses;
}

/** A route's success responses, in its own media type when it answers something other than JSON. */
function successResponsesOf(route: RouteDef): Record<string, unknown> {
  const { produces } = route;
  if (!produces) return route.schema.response;
  return Object.fromEntries(
    Object.entries(route.schema.response).map(([status, schema]) => [
      status,
      {
        description: (schema as { description?: string }).description ?? produces,
        content: { [produces]: { schema: { type: 'string' } } },
      },
    ]),
  );
}

/**
 * The schema @fastify/swagger documents for a route (its `transform` option): the route's own, with
 * its error responses, its media type and the headers it reads. Only the document changes:
 * requests are validated and answers serialized with the route's own schema.
 */
export function documentedSchema(route: RouteDef, schema: FastifySchema): FastifySchema {
  return {
    ...schema,
    ...(route.headers && { headers: route.headers }),
    response: { ...successResponsesOf(route), ...errorResponsesOf(route) },
  };
}
