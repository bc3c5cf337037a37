import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * How Mailroom signs a webhook event (receivers verify the same way):
 *
 *   X-Mailroom-Timestamp: <unix seconds when the POST was made>
 *   X-Mailroom-Signature: sha256=<hex HMAC-SHA256(secret, `${timestamp}.${raw body}`)>
 *
 * The timestamp is inside the signed string, so a captured request cannot be replayed later with
 * a fresh timestamp; receivers reject timestamps older than their tolerance (5 minutes here) and
 * drop repeats by the `Idempotency-Key` header. Compare signatures in constant time.
 */
export const SIGNATURE_HEADER = 'x-mailroom-signature';
export const TIMESTAMP_HEADER = 'x-mailroom-timestamp';
export const IDEMPOTENCY_HEADER = 'idempotency-key';
export const EVENT_HEADER = 'x-mailroom-event';
/** [300] seconds a signature stays acceptable to `verifySignature`. */
export const DEFAULT_TOLERANCE_SECONDS = 300;

export function signPayload(secret: string, timestamp: number, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`, 'utf8').digest('hex')}`;
}

export interface SignatureCheck {
  secret: string;
  body: string;
  /** The X-Mailroom-Timestamp header as received. */
  timestamp: string | undefined;
  /** The X-Mailroom-Signature header as received. */
  signature: string | undefined;
  /** Now, in unix seconds. */
  nowSeconds: number;
  toleranceSeconds?: number;
}

/** True when the signature matches the body and timestamp and the timestamp is recent. */
export function verifySignature(check: SignatureCheck): boolean {
  if (!check.timestamp || !check.signature || !/^\d{1,12}$/.test(check.timestamp)) return false;
  const timestamp = Number(check.timestamp);
  if (Math.abs(check.nowSeconds - timestamp) > (check.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS)) return false;
  const expected = Buffer.from(signPayload(check.secret, timestamp, check.body));
  const given = Buffer.from(check.signature);
  return given.length === expected.length && timingSafeEqual(given, expected);
}
