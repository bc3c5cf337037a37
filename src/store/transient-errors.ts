/**
 * Whether a database error says nothing about the data written: the connection failed or was
 * closed, the server is shutting down or out of resources, a deadlock or serialization failure
 * rolled the transaction back. Such a write may well succeed when tried again, so what it carried
 * must not be given up on (quarantined, skipped) because of it. Anything else (a value refused, a
 * constraint, an index row too large, a trigger) is taken as an answer about the data.
 */
export function isTransientStoreError(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown } | null;
  const code = typeof e?.code === 'string' ? e.code : '';
  // SQLSTATE classes: 08 connection exception, 40 transaction rollback, 53 insufficient
  // resources, 57 operator intervention (admin shutdown, query canceled), 58 system error.
  if (/^(08|40|53|57|58)[0-9A-Z]{3}$/.test(code)) return true;
  // The driver's and the socket's own (no SQLSTATE): the connection went away or never came.
  if (/^E[A-Z]+$/.test(code)) return true;
  const message = typeof e?.message === 'string' ? e.message : '';
  return /Connection terminated|connection (?:is )?(?:closed|ended)|timeout exceeded when trying to connect|Client has encountered a connection error/i.test(
    message,
  );
}
