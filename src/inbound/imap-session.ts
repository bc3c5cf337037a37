import { EventEmitter } from 'node:events';
import { rootCertificates } from 'node:tls';
import { ImapFlow, type ImapFlowOptions } from 'imapflow';
import type { LoginCredentials } from '../auth/credentials.js';
import type { Logger } from '../shared/logger.js';
import { spokePlainText } from '../shared/tls-fallback.js';
import type { TlsMode } from '../shared/tls-mode.js';
import { ImapCommandError } from './imap-errors.js';
import { isStorableDate } from './message/parsed-message.js';

/**
 * The one place imapflow is used: a connection to one mailbox server, reduced to what the
 * inbound pipeline needs. Everything is by UID; nothing relies on \Seen or sequence numbers.
 * A command that fails throws an ImapCommandError naming it (`imap-errors.ts`).
 */

export interface ImapSessionOptions {
  host: string;
  /** The name TLS presents and checks the certificate against, when `host` is an address standing for it. */
  servername?: string;
  port: number;
  /**
   * How the connection is encrypted (`shared/tls-mode.ts`), as imapflow's options (its
   * `ImapFlowOptions` documentation of `secure` and `doSTARTTLS`): `implicit` is `secure: true`
   * (falling back to `doSTARTTLS: true` when the server answers TLS in plain text:
   * `tls-fallback.ts`); `starttls-required` is `doSTARTTLS: true` (no STARTTLS offered: the
   * connection fails before LOGIN); `starttls-when-offered` leaves `doSTARTTLS` unset (imapflow
   * upgrades whenever the server offers it); `none` is `doSTARTTLS: false` (plain text).
   */
  tls: TlsMode;
  login: LoginCredentials;
  /** Extra CA certificates (PEM) to trust for this server, besides the usual roots; verification always stays on. */
  ca?: string;
  logger: Logger;
  /** [90000] TCP/TLS connect budget, ms. */
  connectionTimeoutMs?: number;
  /** [16000] wait for the greeting, ms. */
  greetingTimeoutMs?: number;
  /** [300000] socket inactivity before the connection is declared dead, ms. */
  socketTimeoutMs?: number;
  /** [none] ends and re-issues IDLE after this long, ms (a connection that only idles needs it). */
  maxIdleTimeMs?: number;
  /** An HTTP proxy the connection goes through (HTTP CONNECT; TLS inside the tunnel, end to end). */
  proxy?: URL | undefined;
}

export interface MailboxState {
  uidValidity: number;
  uidNext: number;
  exists: number;
  /** The folder's RFC 6154 special use as the server lists it (`\\All`, `\\Sent`…), if any. */
  specialUse?: string | undefined;
}

export interface MessageMeta {
  uid: number;
  size: number;
  internalDate: Date;
  /**
   * The server's own id of the message, the same in every folder (Gmail's X-GM-MSGID, RFC 8474
   * EMAILID; imapflow's `emailId`, asked for with every FETCH when the server offers either), or
   * null when the server gives none.
   */
  emailId: string | null;
}

export interface MessageSource {
  uid: number;
  source: Buffer;
  internalDate: Date;
  emailId: string | null;
}

export class ImapSession extends EventEmitter<{ exists: [count: number]; close: [] }> {
  private closed = false;

  /** The user name the session logged in as. */
  readonly user: string;

  private constructor(private readonly client: ImapFlow) {
    super();
    this.user = client.options.auth?.user ?? '';
    client.on('exists', (event: { count: number }) => this.emit('exists', event.count));
    client.on('close', () => {
      this.closed = true;
      this.emit('close');
    });
    // imapflow emits 'error' for socket problems; 'close' follows, which is what the watcher acts on.
    client.on('error', () => undefined);
  }

  static async connect(options: ImapSessionOptions): Promise<ImapSession> {
    const auth =
      'pass' in options.login
        ? { user: options.login.user, pass: options.login.pass }
        : { user: options.login.user, accessToken: options.login.accessToken };
    const flowOptions: ImapFlowOptions = {
      host: options.host,
      ...(options.servername !== undefined && { servername: options.servername }),
      port: options.port,
      secure: options.tls === 'implicit',
      ...(options.tls === 'starttls-required' && { doSTARTTLS: true }),
      ...(options.tls === 'none' && { doSTARTTLS: false }),
      auth,
      logger: false,
      disableAutoIdle: true,
      connectionTimeout: options.connectionTimeoutMs ?? 90_000,
      greetingTimeout: options.greetingTimeoutMs ?? 16_000,
      socketTimeout: options.socketTimeoutMs ?? 300_000,
      tls: options.ca
        ? { ca: [...rootCertificates, options.ca], rejectUnauthorized: true }
        : { rejectUnauthorized: true },
      clientInfo: { name: 'Mailroom' },
      ...(options.maxIdleTimeMs !== undefined && { maxIdleTime: options.maxIdleTimeMs }),
      ...(options.proxy && { proxy: options.proxy.href }),
    };
    try {
      return await ImapSession.open(flowOptions);
    } catch (err) {
      // "Use SSL" on a STARTTLS port (143): the server answered TLS in plain text. STARTTLS,
      // required (see tls-fallback.ts).
      if (options.tls !== 'implicit' || !spokePlainText(err)) throw err;
      return ImapSession.open({ ...flowOptions, secure: false, doSTARTTLS: true });
    }
  }

  private static async open(flowOptions: ImapFlowOptions): Promise<ImapSession> {
    const client = new ImapFlow(flowOptions);
    const session = new ImapSession(client);
    try {
      await client.connect();
    } catch (err) {
      client.close();
      throw err;
    }
    return session;
  }

  get usable(): boolean {
    return !this.closed && this.client.usable;
  }

  /** Whether the session is encrypted (TLS from the start, or upgraded by STARTTLS): imapflow's `secureConnection`. */
  get encrypted(): boolean {
    return this.client.secureConnection;
  }

  get supportsIdle(): boolean {
    return this.client.capabilities.has('IDLE');
  }

  /**
   * Whether the server gives each message an id of its own, the same in every folder: RFC 8474
   * OBJECTID (EMAILID) or Gmail's X-GM-EXT-1 (X-GM-MSGID, "a unique ID of each email":
   * https://developers.google.com/gmail/imap/imap-extensions). imapflow asks for it with every
   * FETCH then (`emailId`).
   */
  get hasEmailIds(): boolean {
    return this.client.capabilities.has('OBJECTID') || this.client.capabilities.has('X-GM-EXT-1');
  }

  /**
   * Selects the mailbox, or when it is selected already, asks STATUS for fresh values: a
   * selected mailbox's cached UIDVALIDITY would hide a mailbox that was recreated meanwhile.
   */
  async openMailbox(path: string): Promise<MailboxState> {
    const current = this.client.mailbox;
    if (current && current.path === path) {
      const status = await command(`STATUS ${path}`, () =>
        this.client.status(path, { uidValidity: true, uidNext: true, messages: true }),
      );
      if (status && status.uidValidity !== undefined && status.uidNext !== undefined) {
        return {
          uidValidity: Number(status.uidValidity),
          uidNext: status.uidNext,
          exists: status.messages ?? 0,
          specialUse: current.specialUse,
        };
      }
    }
    const box = await command(`SELECT ${path}`, () => this.client.mailboxOpen(path));
    return {
      uidValidity: Number(box.uidValidity),
      uidNext: box.uidNext,
      exists: box.exists,
      specialUse: box.specialUse,
    };
  }

  /**
   * UIDs above `afterUid`, ascending, optionally only those larger than `largerThan` bytes: one
   * `UID SEARCH`, a line of numbers however many messages wait.
   */
  async uidsSince(afterUid: number, largerThan?: number): Promise<number[]> {
    const query = { uid: `${afterUid + 1}:*`, ...(largerThan !== undefined && { larger: largerThan }) };
    const found = await command('UID SEARCH', () => this.client.search(query, { uid: true }));
    // `N:*` also names the highest message when N is above it: keep only what is new.
    return (found || []).filter((uid) => uid > afterUid).sort((a, b) => a - b);
  }

  /** Sizes and arrival dates of these UIDs (those still there), ascending. */
  async describe(uids: number[]): Promise<MessageMeta[]> {
    if (uids.length === 0) return [];
    const found: MessageMeta[] = [];
    await command('UID FETCH (RFC822.SIZE INTERNALDATE)', async () => {
      for await (const m of this.client.fetch(
        uidSet(uids),
        { uid: true, size: true, internalDate: true },
        { uid: true },
      )) {
        found.push({ uid: m.uid, size: m.size ?? 0, internalDate: toDate(m.internalDate), emailId: m.emailId ?? null });
      }
    });
    return found.sort((a, b) => a.uid - b.uid);
  }

  /**
   * Full sources of these UIDs (BODY.PEEK[]: reading does not set \Seen) with their arrival
   * dates, ascending; a UID no longer in the mailbox is left out.
   */
  async *fetchSources(uids: number[]): AsyncGenerator<MessageSource> {
    if (uids.length === 0) return;
    const fetched: MessageSource[] = [];
    const query = { uid: true, internalDate: true, source: true };
    await command('UID FETCH (BODY.PEEK[])', async () => {
      for await (const m of this.client.fetch(uidSet(uids), query, { uid: true })) {
        if (m.source) {
          fetched.push({
            uid: m.uid,
            source: m.source,
            internalDate: toDate(m.internalDate),
            emailId: m.emailId ?? null,
          });
        }
      }
    });
    fetched.sort((a, b) => a.uid - b.uid);
    yield* fetched;
  }

  /** The header block only, for messages too large to fetch whole. */
  async fetchHeader(uid: number): Promise<Buffer | null> {
    return command('UID FETCH (BODY.PEEK[HEADER])', async () => {
      for await (const m of this.client.fetch(String(uid), { uid: true, headers: true }, { uid: true })) {
        if (m.uid === uid && m.headers) return m.headers;
      }
      return null;
    });
  }

  // imapflow answers a refused STORE, MOVE or EXPUNGE with `false` rather than an error: these
  // turn it into one, so that the action is retried instead of counted as done.
  async markSeen(uids: number[]): Promise<void> {
    // .SILENT: no FETCH response per message back (a batch is hundreds of them).
    if (uids.length === 0) return;
    const done = await command('UID STORE +FLAGS.SILENT (\\Seen)', () =>
      this.client.messageFlagsAdd(uidSet(uids), ['\\Seen'], { uid: true, silent: true }),
    );
    if (done === false) throw new Error('the server refused to flag the messages \\Seen');
  }

  async move(uids: number[], folder: string): Promise<void> {
    if (uids.length === 0) return;
    const done = await command(`UID MOVE ${folder}`, () =>
      this.client.messageMove(uidSet(uids), folder, { uid: true }),
    );
    if (done === false) throw new Error(`the server refused to move the messages to ${folder}`);
  }

  async delete(uids: number[]): Promise<void> {
    if (uids.length === 0) return;
    const done = await command('UID EXPUNGE', () => this.client.messageDelete(uidSet(uids), { uid: true }));
    if (done === false) throw new Error('the server refused to delete the messages');
  }

  async noop(): Promise<void> {
    await command('NOOP', () => this.client.noop());
  }

  /** Starts IDLE in the background; the next command ends it. New mail arrives as 'exists'. */
  idle(): void {
    if (!this.supportsIdle || !this.usable) return;
    this.client.idle().catch(() => undefined);
  }

  /**
   * Keeps the connection in IDLE until it closes, re-entering IDLE whenever it ends (after
   * `maxIdleTimeMs`, or a keep-alive NOOP): for a connection that only watches the selected mailbox.
   */
  keepIdling(): void {
    if (!this.supportsIdle) return;
    const again = (): void => {
      if (!this.usable) return;
      this.client.idle().then(
        () => {
          // Still idling means another IDLE started meanwhile: that one carries on.
          if (!this.client.idling) again();
        },
        () => undefined,
      );
    };
    again();
  }

  /** Logs out (bounded by `timeoutMs`), then drops the socket. Idempotent. */
  async close(timeoutMs = 2000): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.client.logout().catch(() => undefined),
        new Promise((resolve) => (timer = setTimeout(resolve, timeoutMs))),
      ]);
    } finally {
      clearTimeout(timer);
      this.client.close();
    }
  }
}

/** Runs one IMAP command; its failure is an ImapCommandError naming the command. */
async function command<T>(name: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    throw new ImapCommandError(name, err);
  }
}

/** An IMAP sequence set naming these UIDs, runs written as ranges (`1:500,502`). */
export function uidSet(uids: readonly number[]): string {
  const sorted = [...uids].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length;) {
    const first = sorted[i] as number;
    let last = first;
    while (i + 1 < sorted.length && (sorted[i + 1] as number) <= last + 1) last = sorted[++i] as number;
    parts.push(first === last ? String(first) : `${first}:${last}`);
    i += 1;
  }
  return parts.join(',');
}

/** An INTERNALDATE as a Date; one missing, unreadable or that the database cannot store is now. */
function toDate(value: Date | string | undefined): Date {
  const date = typeof value === 'string' ? new Date(value) : value;
  return date instanceof Date && isStorableDate(date) ? date : new Date();
}
