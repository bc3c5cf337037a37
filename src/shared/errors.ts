/**
 * Every error code Mailroom reports, with the HTTP status the API answers and a sentence
 * describing it. Codes are stable: clients and alerts match on them. A unit test pins this list.
 */
export const ERROR_CODES = {
  VALIDATION_FAILED: { status: 400, text: 'A field of the request is missing or invalid.' },
  MALFORMED_REQUEST: {
    status: 400,
    text: 'The request is not valid HTTP or its URL cannot be decoded; nothing was done.',
  },
  REQUEST_TIMEOUT: { status: 408, text: 'The request was not received in time; nothing was done.' },
  HEADERS_TOO_LARGE: { status: 431, text: 'The request headers are larger than the engine accepts.' },
  UNAUTHORIZED: { status: 401, text: 'The request carries no valid API token.' },
  TOO_MANY_WAITS: {
    status: 429,
    text: 'The API token holds as many long polls and event streams open as it may; retry after the time given.',
  },
  TOO_MANY_SEARCHES: {
    status: 429,
    text: 'The tenant (or the whole engine) is already running as many message trace searches as it may; retry after the time given.',
  },
  RATE_LIMITED: {
    status: 429,
    text: 'The API token (or, without a valid token, the address) made more requests than it may; retry after the time given.',
  },
  FORBIDDEN: { status: 403, text: 'The API token may not perform this operation.' },
  NOT_FOUND: { status: 404, text: 'No such route.' },
  TENANT_NOT_FOUND: { status: 404, text: 'The tenant does not exist or is not visible to this token.' },
  SERVER_NOT_FOUND: { status: 404, text: 'The e-mail server does not exist in this tenant.' },
  DESTINATION_NOT_FOUND: { status: 404, text: 'The destination does not exist in this tenant.' },
  TOKEN_NOT_FOUND: { status: 404, text: 'The API token does not exist.' },
  PAYLOAD_TOO_LARGE: { status: 413, text: 'The request body is larger than the engine accepts.' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, text: 'The request body must be JSON (Content-Type: application/json).' },
  SERVER_LIMIT_REACHED: { status: 409, text: 'The tenant already has the maximum number of e-mail servers.' },
  TOKEN_LIMIT_REACHED: { status: 409, text: 'The tenant already has the maximum number of API tokens.' },
  ACCOUNT_IN_USE: { status: 409, text: 'The same account (IMAP host and user name) is already configured.' },
  SERVER_IN_USE: { status: 409, text: 'The e-mail server is used by destinations and cannot be deleted.' },
  SERVER_HAS_QUEUED_MAIL: {
    status: 409,
    text: 'Outgoing mail still waits to be sent through the e-mail server; it cannot be deleted yet.',
  },
  TENANT_NOT_EMPTY: { status: 409, text: 'The tenant still has e-mail servers or destinations.' },
  DUPLICATE_NAME: { status: 409, text: 'Another object of the same kind already has this name.' },
  DUPLICATE_ADDRESS: { status: 409, text: 'Another destination of this tenant already has this address.' },
  CONFLICT: { status: 409, text: 'The object was changed concurrently; retry.' },
  CREDENTIALS_UNAVAILABLE: {
    status: 409,
    text: 'The account has no usable credentials yet (for OAuth 2.0: the sign-in is not complete).',
  },
  MESSAGE_NOT_FOUND: { status: 404, text: 'The message does not exist for this destination.' },
  MESSAGE_NOT_HELD: { status: 409, text: 'The message is neither unrouted nor quarantined: nothing to act on.' },
  MESSAGE_NOT_RELEASABLE: {
    status: 409,
    text: 'The message would still be held if released (it cannot be parsed, or matches no destination).',
  },
  ALREADY_CLAIMED: { status: 409, text: 'Another agent has already claimed the message.' },
  TEMPLATE_NOT_FOUND: {
    status: 404,
    text: 'The response file or response does not exist or is not enabled for this destination.',
  },
  TEMPLATE_UNAVAILABLE: {
    status: 422,
    text: 'The response cannot be used: its Src is missing, refused or not fetched (see templates check).',
  },
  SECRET_UNREADABLE: { status: 500, text: 'A sealed secret failed authentication (wrong key or tampered data).' },
  SECRET_KEY_MISSING: { status: 500, text: 'No secret key is configured for sealing credentials.' },
  CONFIG_INVALID: { status: 500, text: 'The engine configuration is invalid.' },
  PROXY_NOT_CONFIGURED: {
    status: 409,
    text: 'The e-mail server chooses a proxy this engine is not configured with (MAILROOM_PROXIES).',
  },
  UNAVAILABLE: { status: 503, text: 'The engine is starting or stopping.' },
  DATABASE_UNAVAILABLE: {
    status: 503,
    text: 'The database cannot be reached (stopped, restarting or unreachable); try again shortly.',
  },
  ERASURE_NOT_FOUND: { status: 404, text: 'The erasure does not exist in this tenant.' },
  SOURCE_STORE_UNAVAILABLE: {
    status: 503,
    text: 'The store of raw message sources (directory or object store) cannot be reached; try again shortly.',
  },
  SPOOL_FULL: { status: 507, text: 'The spool disk is full; the message was not accepted.' },
  SPOOL_UNAVAILABLE: { status: 503, text: 'The spool cannot be written; the message was not accepted.' },
  SPOOL_LOCKED: { status: 500, text: 'Another process holds the spool folder.' },
  DATABASE_LOCKED: {
    status: 500,
    text: 'Another process (a running engine) holds the embedded database; stop it, or use its API or console.',
  },
  SPOOL_CORRUPT: { status: 500, text: 'A spool file failed its checksum and was set aside.' },
  NOT_AVAILABLE_FOR_OUTGOING: { status: 409, text: 'The destination is not available for outgoing mail.' },
  OUTBOUND_NOT_FOUND: { status: 404, text: 'The outgoing message does not exist.' },
  OUTBOUND_NOT_WAITING: {
    status: 409,
    text: 'The outgoing message is no longer waiting to be sent (sent, being sent, or given up).',
  },
  INSTANCE_RUNNING: {
    status: 409,
    text: 'The engine instance runs (it renews its presence): only a stopped instance can be retired.',
  },
  OUTBOUND_REQUEST_NOT_WAITING: {
    status: 409,
    text: 'The request left for another instance is no longer waiting (being carried out, or settled).',
  },
  OAUTH_NOT_CONFIGURED: {
    status: 409,
    text: 'This side of the e-mail server does not use an OAuth 2.0 flow that needs this operation.',
  },
  OAUTH_FAILED: { status: 502, text: 'The identity provider could not be reached or refused the OAuth 2.0 request.' },
  INTERNAL: { status: 500, text: 'An unexpected internal error occurred.' },
} as const satisfies Record<string, { status: number; text: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface MailroomErrorOptions {
  /** Dotted path of the input field at fault, e.g. `imap.port`. */
  field?: string;
  /** Extra machine-readable facts, e.g. the conflicting tenant or the destinations in use. */
  details?: Record<string, unknown>;
  /** Seconds after which the request may succeed (sent as `Retry-After`). */
  retryAfterSeconds?: number;
  /**
   * What a tenant token is told instead, when the message or details name other tenants (their
   * names, ids, or what they configured): the API answers tenant tokens with this message and
   * these details (none when left out); administrator tokens get the full error.
   */
  forTenants?: { message: string; details?: Record<string, unknown> };
  cause?: unknown;
}

export class MailroomError extends Error {
  readonly code: ErrorCode;
  readonly field?: string;
  readonly details?: Record<string, unknown>;
  /** Sent as `Retry-After` (seconds) with the answer. */
  readonly retryAfterSeconds?: number;
  /** See MailroomErrorOptions.forTenants. */
  readonly forTenants?: { message: string; details?: Record<string, unknown> };

  constructor(code: ErrorCode, message: string, options: MailroomErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'MailroomError';
    this.code = code;
    if (options.field !== undefined) this.field = options.field;
    if (options.details !== undefined) this.details = options.details;
    if (options.retryAfterSeconds !== undefined) this.retryAfterSeconds = options.retryAfterSeconds;
    if (options.forTenants !== undefined) this.forTenants = options.forTenants;
  }

  /** The error as a tenant token may see it: without what it says of other tenants. */
  forTenantToken(): MailroomError {
    if (this.forTenants === undefined) return this;
    return new MailroomError(this.code, this.forTenants.message, {
      ...(this.field !== undefined && { field: this.field }),
      ...(this.forTenants.details !== undefined && { details: this.forTenants.details }),
      ...(this.retryAfterSeconds !== undefined && { retryAfterSeconds: this.retryAfterSeconds }),
    });
  }

  get status(): number {
    return ERROR_CODES[this.code].status;
  }
}

export function isMailroomError(err: unknown, code?: ErrorCode): err is MailroomError {
  return err instanceof MailroomError && (code === undefined || err.code === code);
}
