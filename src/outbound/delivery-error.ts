/**
 * Decides what a failed SMTP delivery means, from the reply code first and the library's error
 * code second (after EmailEngine's delivery-error). Pure and table-tested.
 *
 * - `permanent`: the server refused this message for good (5xx): dead-letter it.
 * - `transient`: try this message again later (4xx): it backs off on its own, the queue goes on.
 * - `auth`: the account's credentials were refused or cannot be had: hold the account's queue, dead-letter nothing.
 * - `unreachable`: no usable connection: pause the account's queue and probe the relay.
 */
export type FailureKind = 'permanent' | 'transient' | 'auth' | 'unreachable';

export interface DeliveryFailure {
  kind: FailureKind;
  /** SMTP reply code when the server gave one. */
  responseCode: number | null;
  /** The server's reply (or the library's message), for the status and the dead letter. */
  reply: string;
  /** 4.7.x: throttling or policy; retried after a longer delay. */
  throttled: boolean;
  /**
   * How long the server asked to wait before the next try (Microsoft Graph's `Retry-After` on a
   * 429 or 503, https://learn.microsoft.com/graph/throttling), ms; absent when it said nothing.
   */
  retryAfterMs?: number;
}

interface SmtpErrorLike {
  code?: unknown;
  responseCode?: unknown;
  response?: unknown;
  command?: unknown;
  message?: unknown;
  /** Microsoft Graph's `Retry-After` (shared/graph/graph-client.ts GraphError), ms. */
  retryAfterMs?: unknown;
}

const UNREACHABLE_CODES = new Set([
  'ECONNECTION',
  'ESOCKET',
  'ETIMEDOUT',
  'EDNS',
  'ECONNREFUSED',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'ETLS',
  'EPROTOCOL',
  'EPROXY',
  // Mailroom's own: the server chooses a proxy the engine is not configured with.
  'PROXY_NOT_CONFIGURED',
  // Mailroom's own: the server's `smtp.caFile` went missing or bad (no connection is made).
  'ECAFILE',
  // Mailroom's own: a host a tenant chose leads where MAILROOM_MAIL_ALLOW_PRIVATE forbids (no connection is made).
  'EADDRNOTALLOWED',
]);

export function classifyDeliveryError(err: unknown): DeliveryFailure {
  const e = (typeof err === 'object' && err !== null ? err : {}) as SmtpErrorLike;
  const responseCode = typeof e.responseCode === 'number' ? e.responseCode : null;
  const reply = String(e.response ?? e.message ?? err).slice(0, 1000);
  const code = typeof e.code === 'string' ? e.code : '';
  const retryAfterMs = typeof e.retryAfterMs === 'number' ? e.retryAfterMs : null;
  const throttled = /\b4\.7\.\d+\b/.test(reply) || retryAfterMs !== null;
  const result = (kind: FailureKind): DeliveryFailure => ({
    kind,
    responseCode,
    reply,
    throttled,
    ...(retryAfterMs !== null && { retryAfterMs }),
  });

  // Mailroom's own: the account's credentials cannot be had (e.g. a person must sign in again).
  if (code === 'CREDENTIALS_UNAVAILABLE') return result('auth');
  // Mailroom's own: a Unicode local part and a server without SMTPUTF8 (smtp-envelope.ts).
  if (code === 'ESMTPUTF8') return result('permanent');
  if (code === 'EAUTH' || responseCode === 535 || responseCode === 534 || responseCode === 530) return result('auth');
  // STARTTLS refused or failed (with `tls: starttls-required`, a server that offers none answers
  // 500 to it): no message was offered, so its reply code says nothing about the message.
  if (code === 'ETLS') return { ...result('unreachable'), reply: tlsReply(e, reply) };
  if (responseCode !== null) {
    // A 421 greeting or shutdown notice means the service is not there right now.
    if (responseCode === 421) return result('unreachable');
    if (responseCode >= 500) return result('permanent');
    if (responseCode >= 400) return result('transient');
  }
  if (UNREACHABLE_CODES.has(code)) return result('unreachable');
  // Anything else (an unexpected library error): retry rather than lose the message.
  return result('transient');
}

/** A failed STARTTLS in words: nodemailer's message says what it tried, the reply what the server said. */
function tlsReply(e: SmtpErrorLike, reply: string): string {
  return e.command === 'STARTTLS' && typeof e.response === 'string'
    ? `the server did not take STARTTLS: ${reply}`.slice(0, 1000)
    : reply;
}

/**
 * Delay before retrying a message after its `attempt`-th transient failure: 1, 2, 4 … minutes,
 * capped at an hour; throttling replies (4.7.x) wait at least 15 minutes.
 */
export function retryDelayMs(attempt: number, throttled: boolean): number {
  const base = Math.min(60 * 60_000, 60_000 * 2 ** Math.max(0, attempt - 1));
  return throttled ? Math.max(base, 15 * 60_000) : base;
}

/** Error codes of a connection that was never made: nothing of a message can have reached a server. */
const NOTHING_SENT_CODES = new Set([
  'CREDENTIALS_UNAVAILABLE',
  'ESMTPUTF8',
  'EAUTH',
  'ECONNREFUSED',
  'EDNS',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPROXY',
  'PROXY_NOT_CONFIGURED',
  'ECAFILE',
  'EADDRNOTALLOWED',
]);

/**
 * Whether a failed delivery surely did not deliver the message: the server answered with a
 * refusal (any reply code: a refused command, or a refusal after the final dot), or no connection
 * was ever made (nodemailer reports a refused connection as `ESOCKET` with the system's code in
 * `originalCode`). A connection lost during or after DATA, a timeout or an unknown error may have
 * delivered it; the hourly rate limit then counts it as a send.
 */
export function certainlyNotDelivered(err: unknown): boolean {
  const e = (typeof err === 'object' && err !== null ? err : {}) as SmtpErrorLike & {
    originalCode?: unknown;
    syscall?: unknown;
  };
  if (typeof e.responseCode === 'number' && e.responseCode >= 400) return true;
  if (e.syscall === 'connect') return true;
  return [e.code, e.originalCode].some((code) => typeof code === 'string' && NOTHING_SENT_CODES.has(code));
}

/**
 * The recipients a server refused while it took the message for the others, split by what is
 * done with them: `permanent` (5xx) are recorded as refused for good, `temporary` (4xx, or no
 * code) get the message again later, they alone.
 */
export function splitRefusals<R extends { responseCode: number | null }>(
  refused: readonly R[],
): { permanent: R[]; temporary: R[] } {
  const permanent: R[] = [];
  const temporary: R[] = [];
  for (const r of refused) (r.responseCode !== null && r.responseCode >= 500 ? permanent : temporary).push(r);
  return { permanent, temporary };
}
