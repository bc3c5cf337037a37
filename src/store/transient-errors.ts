/** What the driver says when a connection went away or never came (no SQLSTATE then). */
const CONNECTION_LOST =
  /Connection terminated|connection (?:is )?(?:closed|ended)|timeout exceeded when trying to connect|Client has encountered a connection error/i;

/** Errors of a socket (never of a file): the database server went away or was never reached. */
const SOCKET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

function codeOf(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : '';
}

function messageOf(err: unknown): string {
  const message = (err as { message?: unknown } | null)?.message;
  return typeof message === 'string' ? message : '';
}

/**
 * Whether a database error says nothing about the data written: the connection failed or was
 * closed, the server is shutting down or out of resources, a deadlock or serialization failure
 * rolled the transaction back. Such a write may well succeed when tried again, so what it carried
 * must not be given up on (quarantined, skipped) because of it. Anything else (a value refused, a
 * constraint, an index row too large, a trigger) is taken as an answer about the data.
 */
export function isTransientStoreError(err: unknown): boolean {
  const code = codeOf(err);
  // SQLSTATE classes: 08 connection exception, 40 transaction rollback, 53 insufficient
  // resources, 57 operator intervention (admin shutdown, query canceled), 58 system error.
  if (/^(08|40|53|57|58)[0-9A-Z]{3}$/.test(code)) return true;
  // The driver's and the socket's own (no SQLSTATE): the connection went away or never came.
  if (/^E[A-Z]+$/.test(code)) return true;
  return CONNECTION_LOST.test(messageOf(err));
}

/**
 * Whether a database error says that the database cannot be reached now (stopped, restarting,
 * refusing connections, the network between): nothing about the request, which may be made again
 * once it is back (the pool reconnects by itself). The API answers it with 503
 * DATABASE_UNAVAILABLE. A deadlock, a cancelled statement or a refused value is not this.
 */
export function isDatabaseUnreachable(err: unknown): boolean {
  const code = codeOf(err);
  // SQLSTATE 08 connection exception; 57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot
  // connect now (starting up, shutting down); 53300 too many connections.
  if (/^08[0-9A-Z]{3}$/.test(code) || /^57P0[1-3]$/.test(code) || code === '53300') return true;
  if (SOCKET_CODES.has(code)) return true;
  return CONNECTION_LOST.test(messageOf(err));
}
