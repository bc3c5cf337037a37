import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { MailroomError } from './errors.js';

/** Envelope version written by this code. */
const VERSION = 'mr1';
const KEY_BYTES = 32; // AES-256
const IV_BYTES = 12; // GCM standard nonce
const TAG_BYTES = 16;

/** A short, non-secret identifier of a key: the first 8 hex digits of its SHA-256. */
export function keyIdOf(key: Buffer): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 8);
}

export function parseSecretKey(base64: string, source: string): Buffer {
  const key = Buffer.from(base64.trim(), 'base64');
  if (key.length !== KEY_BYTES) {
    throw new MailroomError(
      'CONFIG_INVALID',
      `${source} must be ${KEY_BYTES} random bytes in base64 (got ${key.length} bytes); make one with: openssl rand -base64 32`,
      { field: source },
    );
  }
  return key;
}

export function generateSecretKey(): string {
  return randomBytes(KEY_BYTES).toString('base64');
}

/**
 * What a sealed value is bound to. The same ciphertext copied to another row, tenant or field
 * fails authentication instead of decrypting.
 */
export interface SealContext {
  tenantId: string;
  rowId: string;
  field: string;
}

function aadOf(ctx: SealContext): Buffer {
  return Buffer.from(`${VERSION}|${ctx.tenantId}|${ctx.rowId}|${ctx.field}`, 'utf8');
}

/**
 * Seals secrets with AES-256-GCM in a versioned envelope `mr1.<keyId>.<iv>.<tag>.<ciphertext>`
 * (base64url parts). Older keys may be kept to open values sealed before a key rotation; new
 * values are always sealed with the current key.
 */
export class SecretSealer {
  private readonly current: { id: string; key: Buffer };
  private readonly keys = new Map<string, Buffer>();

  constructor(currentKey: Buffer, previousKeys: Buffer[] = []) {
    this.current = { id: keyIdOf(currentKey), key: currentKey };
    for (const key of [currentKey, ...previousKeys]) this.keys.set(keyIdOf(key), key);
  }

  get keyId(): string {
    return this.current.id;
  }

  seal(plaintext: string, ctx: SealContext): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.current.key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(aadOf(ctx));
    const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    const tag = cipher.getAuthTag();
    return [
      VERSION,
      this.current.id,
      iv.toString('base64url'),
      tag.toString('base64url'),
      ciphertext.toString('base64url'),
    ].join('.');
  }

  open(envelope: string, ctx: SealContext): string {
    const parts = envelope.split('.');
    const unreadable = (why: string): MailroomError =>
      new MailroomError('SECRET_UNREADABLE', `sealed ${ctx.field} of ${ctx.rowId} cannot be opened: ${why}`);
    if (parts.length !== 5 || parts[0] !== VERSION) throw unreadable('unknown envelope format');
    const [, keyId, ivText, tagText, dataText] = parts as [string, string, string, string, string];
    const key = this.keys.get(keyId);
    if (!key) throw unreadable(`sealed with key ${keyId}, which is not configured`);
    const iv = Buffer.from(ivText, 'base64url');
    const tag = Buffer.from(tagText, 'base64url');
    if (iv.length !== IV_BYTES || tag.length !== TAG_BYTES) throw unreadable('malformed envelope');
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
      decipher.setAAD(aadOf(ctx));
      decipher.setAuthTag(tag);
      return Buffer.concat([decipher.update(Buffer.from(dataText, 'base64url')), decipher.final()]).toString('utf8');
    } catch {
      throw unreadable('authentication failed (tampered value or wrong key)');
    }
  }
}
