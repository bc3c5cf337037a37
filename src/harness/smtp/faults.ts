/**
 * Fault injection state for the SMTP harness. Pure bookkeeping: the server handlers
 * ask it what to do at each phase, tests change it at runtime.
 */

/** Phases at which the harness can answer with a chosen reply instead of the normal one. */
export type SmtpReplyPhase = 'connect' | 'mailFrom' | 'data';

/** Points at which the harness can drop the TCP connection without a reply. */
export type SmtpDropPoint = 'connect' | 'midData' | 'afterData';

/** A reply the harness sends instead of the normal one. */
export interface SmtpReply {
  /** SMTP reply code, eg. 421, 451, 452, 550, 554. */
  code: number;
  /** Reply text; a default naming the injected fault is used when omitted. */
  message: string;
}

export interface FaultOptions {
  /**
   * How many times the fault fires before it clears itself, to simulate a transient
   * failure followed by recovery. [times=Infinity] (until `clear()`)
   */
  times?: number;
}

export interface DropOptions extends FaultOptions {
  /**
   * `midData` only: drop once at least this many bytes of the message have arrived.
   * [afterBytes=0] (on the first chunk of message data)
   */
  afterBytes?: number;
}

/**
 * Slow-server behaviour applied to every response line the harness writes on a cleartext
 * or implicit-TLS connection (not after a STARTTLS upgrade, whose socket smtp-server creates).
 */
export interface SlowOptions {
  /** Delay before each response is written, in milliseconds. [delayMs=0] */
  delayMs?: number;
  /**
   * Write each response in pieces of `chunkBytes` bytes with `intervalMs` milliseconds
   * between them (a trickling server). Unset: each response is written at once.
   */
  trickle?: { chunkBytes: number; intervalMs: number };
}

interface Armed<T> {
  value: T;
  remaining: number;
}

const DEFAULT_MESSAGES: Record<SmtpReplyPhase, string> = {
  connect: 'Service not available (injected fault)',
  mailFrom: 'Sender rejected (injected fault)',
  data: 'Message rejected (injected fault)',
};

/** Wildcard recipient address for `rejectRecipient`: matches every recipient. */
export const ANY_RECIPIENT = '*';

/**
 * Runtime-settable faults. Each armed fault fires `times` times, then disarms itself.
 */
export class SmtpFaults {
  private readonly replies = new Map<SmtpReplyPhase, Armed<SmtpReply>>();
  private readonly recipients = new Map<string, Armed<SmtpReply>>();
  private readonly drops = new Map<SmtpDropPoint, Armed<number>>();
  private slowOptions: SlowOptions | undefined;

  /**
   * Answer `code message` at a phase: `connect` replaces the 220 greeting (use 421),
   * `mailFrom` answers MAIL FROM (eg. 451), `data` answers after the final dot (eg. 554, 451).
   * A 421 reply also closes the connection, as smtp-server does for any 421.
   */
  replyAt(phase: SmtpReplyPhase, code: number, message?: string, options: FaultOptions = {}): void {
    this.replies.set(phase, armed({ code, message: message ?? DEFAULT_MESSAGES[phase] }, options));
  }

  /**
   * Answer RCPT TO for `address` (case-insensitive, or `'*'` for every recipient)
   * with `code message`, eg. 452 (temporary) or 550 (permanent).
   */
  rejectRecipient(address: string, code: number, message?: string, options: FaultOptions = {}): void {
    const reply = { code, message: message ?? `Recipient ${address} rejected (injected fault)` };
    this.recipients.set(address.toLowerCase(), armed(reply, options));
  }

  /**
   * Close the TCP connection without a reply: at `connect` (before the greeting), in the
   * middle of DATA (the message is not recorded) or after the final dot (the message IS
   * recorded but the client never gets the 250, the duplicate-delivery case).
   */
  dropAt(point: SmtpDropPoint, options: DropOptions = {}): void {
    this.drops.set(point, armed(options.afterBytes ?? 0, options));
  }

  /** Slow down every response from now on; `undefined` restores full speed. */
  slow(options: SlowOptions | undefined): void {
    this.slowOptions = options;
  }

  /** Disarm every fault and restore full speed. */
  clear(): void {
    this.replies.clear();
    this.recipients.clear();
    this.drops.clear();
    this.slowOptions = undefined;
  }

  /** @internal Consumes one firing of the reply armed for `phase`, if any. */
  takeReply(phase: SmtpReplyPhase): SmtpReply | undefined {
    return take(this.replies, phase);
  }

  /** @internal Consumes one firing of the rejection armed for `address`, if any. */
  takeRecipient(address: string): SmtpReply | undefined {
    const key = address.toLowerCase();
    return take(this.recipients, this.recipients.has(key) ? key : ANY_RECIPIENT);
  }

  /** @internal Consumes one firing of the drop armed at `point`; returns its byte threshold. */
  takeDrop(point: SmtpDropPoint): number | undefined {
    return take(this.drops, point);
  }

  /** @internal Current slow-down settings. */
  get slowness(): SlowOptions | undefined {
    return this.slowOptions;
  }
}

function armed<T>(value: T, options: FaultOptions): Armed<T> {
  const remaining = options.times ?? Infinity;
  if (!(remaining > 0)) throw new RangeError(`times must be positive, got ${remaining}`);
  return { value, remaining };
}

function take<K, T>(map: Map<K, Armed<T>>, key: K): T | undefined {
  const entry = map.get(key);
  if (!entry) return undefined;
  entry.remaining -= 1;
  if (entry.remaining <= 0) map.delete(key);
  return entry.value;
}
