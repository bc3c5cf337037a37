import assert from 'node:assert/strict';
import { ERROR_CODES, MailroomError } from '../../../src/shared/errors.js';

describe('error codes', () => {
  it('pins the list of codes and their HTTP statuses (changing one is a breaking change)', () => {
    const pinned = Object.fromEntries(Object.entries(ERROR_CODES).map(([code, { status }]) => [code, status]));
    assert.deepEqual(pinned, {
      VALIDATION_FAILED: 400,
      MALFORMED_REQUEST: 400,
      REQUEST_TIMEOUT: 408,
      HEADERS_TOO_LARGE: 431,
      UNAUTHORIZED: 401,
      FORBIDDEN: 403,
      NOT_FOUND: 404,
      TENANT_NOT_FOUND: 404,
      SERVER_NOT_FOUND: 404,
      SOURCE_STORE_UNAVAILABLE: 503,
      DESTINATION_NOT_FOUND: 404,
      TOKEN_NOT_FOUND: 404,
      TOO_MANY_WAITS: 429,
      TOO_MANY_SEARCHES: 429,
      RATE_LIMITED: 429,
      PAYLOAD_TOO_LARGE: 413,
      UNSUPPORTED_MEDIA_TYPE: 415,
      SERVER_LIMIT_REACHED: 409,
      TOKEN_LIMIT_REACHED: 409,
      ACCOUNT_IN_USE: 409,
      SERVER_IN_USE: 409,
      SERVER_HAS_QUEUED_MAIL: 409,
      TENANT_NOT_EMPTY: 409,
      DUPLICATE_NAME: 409,
      ERASURE_NOT_FOUND: 404,
      DUPLICATE_ADDRESS: 409,
      CONFLICT: 409,
      CREDENTIALS_UNAVAILABLE: 409,
      MESSAGE_NOT_FOUND: 404,
      MESSAGE_NOT_HELD: 409,
      MESSAGE_NOT_RELEASABLE: 409,
      ALREADY_CLAIMED: 409,
      TEMPLATE_NOT_FOUND: 404,
      TEMPLATE_UNAVAILABLE: 422,
      SECRET_UNREADABLE: 500,
      SECRET_KEY_MISSING: 500,
      CONFIG_INVALID: 500,
      PROXY_NOT_CONFIGURED: 409,
      UNAVAILABLE: 503,
      DATABASE_UNAVAILABLE: 503,
      SPOOL_FULL: 507,
      SPOOL_UNAVAILABLE: 503,
      SPOOL_LOCKED: 500,
      DATABASE_LOCKED: 500,
      SPOOL_CORRUPT: 500,
      NOT_AVAILABLE_FOR_OUTGOING: 409,
      OUTBOUND_NOT_FOUND: 404,
      OUTBOUND_NOT_WAITING: 409,
      INSTANCE_RUNNING: 409,
      OUTBOUND_REQUEST_NOT_WAITING: 409,
      OAUTH_NOT_CONFIGURED: 409,
      OAUTH_FAILED: 502,
      INTERNAL: 500,
    });
  });

  it('gives every code a sentence', () => {
    for (const [code, { text }] of Object.entries(ERROR_CODES)) assert.match(text, /^[A-Z].+\.$/, code);
  });

  it('carries code, field, details and status', () => {
    const err = new MailroomError('SERVER_LIMIT_REACHED', 'too many', { field: 'name', details: { limit: 5 } });
    assert.equal(err.status, 409);
    assert.equal(err.field, 'name');
    assert.deepEqual(err.details, { limit: 5 });
    assert.ok(err instanceof Error);
  });
});
