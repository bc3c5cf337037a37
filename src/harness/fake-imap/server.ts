/**
 * The fake IMAP server: a TCP listener, its sessions, and the programmatic API tests and users
 * drive it with (add mail, manage mailboxes, inject faults, close).
 */
import { createServer, type Server, type Socket } from 'node:net';
import { FaultInjector } from './faults.js';
import { Session, type TraceEntry } from './session.js';
import { MailStore, type Mailbox, type UserAccount } from './store.js';

export interface FakeImapUser {
  user: string;
  /** Accepted by LOGIN and AUTHENTICATE PLAIN; without it the user can only use OAuth. */
  password?: string;
  /** Bearer tokens accepted by AUTHENTICATE XOAUTH2. */
  accessTokens?: string[];
  /** Mailboxes created next to INBOX. */
  mailboxes?: string[];
}

export interface FakeImapOptions {
  /** Address to listen on [default `127.0.0.1`]. */
  host?: string;
  /** Port to listen on [default 0: any free port]. */
  port?: number;
  users?: FakeImapUser[];
  /** Advertise SASL-IR, letting AUTHENTICATE carry its first response [default true]. */
  saslIr?: boolean;
  /** Also accept XOAUTH2 tokens this callback approves (e.g. `FakeIdp.verifyAccessToken`). */
  verifyAccessToken?: (user: string, token: string) => boolean;
  /** Advertise and accept IDLE [default true]; `faults.disableIdle()` changes it later. */
  idle?: boolean;
  /** Time a client gets to close its end after `close()` says BYE [ms, default 200]. */
  closeGraceMs?: number;
  /** Receives every protocol line (credentials hidden, long lines cut). */
  trace?: (entry: TraceEntry) => void;
  /**
   * Behave like Gmail [default false]: X-GM-EXT-1 advertised, X-GM-MSGID and X-GM-THRID fetched,
   * `[Gmail]/All Mail` (`\All`) holding every message, a message in several folders (labels) the
   * same message (`append`'s `alsoIn`, COPY).
   */
  gmail?: boolean;
}

export interface AppendOptions {
  flags?: string[];
  /** Internal date [default now]. */
  date?: Date;
  /** Gmail mode: more folders (labels) the same message is in, with the same X-GM-MSGID. */
  alsoIn?: string[];
}

export interface AppendResult {
  uid: number;
  uidValidity: number;
}

/** A copy of a stored message, as the API returns it. */
export interface FakeMessage {
  uid: number;
  flags: string[];
  internalDate: Date;
  raw: Buffer;
  /** Gmail mode: its X-GM-MSGID. */
  gmMsgId?: string;
}

export interface MailboxInfo {
  name: string;
  uidValidity: number;
  uidNext: number;
  messages: number;
}

export interface FakeImapServer {
  readonly host: string;
  readonly port: number;
  /** `imap://host:port`. */
  readonly url: string;
  readonly faults: FaultInjector;
  /** Open client connections. */
  readonly connections: number;
  addUser(user: FakeImapUser): void;
  /** Delivers a message as if it arrived from outside; idling sessions hear of it at once. */
  append(user: string, mailbox: string, raw: Buffer | string, options?: AppendOptions): AppendResult;
  createMailbox(user: string, mailbox: string, options?: { specialUse?: string }): void;
  deleteMailbox(user: string, mailbox: string): void;
  /** Gives the mailbox a new UIDVALIDITY and renumbers its messages from 1; returns the new value. */
  resetUidValidity(user: string, mailbox: string): number;
  mailbox(user: string, mailbox: string): MailboxInfo;
  mailboxes(user: string): string[];
  messages(user: string, mailbox: string): FakeMessage[];
  /**
   * Says BYE to the clients logged in as `user` (every client when absent) and closes their
   * connections; the listener stays. Resolves with how many were ended.
   */
  disconnect(user?: string): Promise<number>;
  /** Says BYE to every client, closes their sockets and the listener. Safe to call twice. */
  close(): Promise<void>;
}

class FakeImap implements FakeImapServer {
  readonly faults: FaultInjector;
  private readonly store: MailStore;
  private readonly sessions = new Set<Session>();
  private nextSessionId = 1;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly server: Server,
    private readonly options: FakeImapOptions,
  ) {
    this.faults = new FaultInjector({ idle: options.idle });
    this.store = new MailStore(options.gmail ?? false);
    for (const user of options.users ?? []) {
      this.addUser(user);
    }
    server.on('connection', (socket: Socket) => this.accept(socket));
  }

  get host(): string {
    const address = this.server.address();
    return typeof address === 'object' && address ? address.address : (this.options.host ?? '127.0.0.1');
  }

  get port(): number {
    const address = this.server.address();
    return typeof address === 'object' && address ? address.port : 0;
  }

  get url(): string {
    const host = this.host.includes(':') ? `[${this.host}]` : this.host;
    return `imap://${host}:${this.port}`;
  }

  get connections(): number {
    return this.sessions.size;
  }

  addUser(user: FakeImapUser): void {
    const account = this.store.addUser(user.user, { password: user.password, accessTokens: user.accessTokens });
    for (const name of user.mailboxes ?? []) {
      this.store.createMailbox(account, name);
    }
  }

  append(user: string, mailbox: string, raw: Buffer | string, options: AppendOptions = {}): AppendResult {
    const account = this.store.user(user);
    const target = this.store.mailbox(account, mailbox);
    const bytes = typeof raw === 'string' ? Buffer.from(raw) : raw;
    const { alsoIn = [], ...input } = options;
    const message = this.store.append(account, target, bytes, input);
    for (const name of alsoIn) {
      if (message.gmMsgId === undefined) throw new Error('alsoIn needs a fake IMAP server in Gmail mode');
      this.store.append(account, this.store.mailbox(account, name), bytes, { ...input, gmMsgId: message.gmMsgId });
    }
    return { uid: message.uid, uidValidity: target.uidValidity };
  }

  createMailbox(user: string, mailbox: string, options: { specialUse?: string } = {}): void {
    this.store.createMailbox(this.store.user(user), mailbox, options.specialUse);
  }

  deleteMailbox(user: string, mailbox: string): void {
    this.store.deleteMailbox(this.store.user(user), mailbox);
  }

  resetUidValidity(user: string, mailbox: string): number {
    const account = this.store.user(user);
    return this.store.resetUidValidity(account, this.store.mailbox(account, mailbox));
  }

  mailbox(user: string, mailbox: string): MailboxInfo {
    const found = this.find(user, mailbox).mailbox;
    return {
      name: found.name,
      uidValidity: found.uidValidity,
      uidNext: found.uidNext,
      messages: found.messages.length,
    };
  }

  mailboxes(user: string): string[] {
    return [...this.store.user(user).mailboxes.keys()];
  }

  messages(user: string, mailbox: string): FakeMessage[] {
    return this.find(user, mailbox).mailbox.messages.map((message) => ({
      uid: message.uid,
      flags: [...message.flags],
      internalDate: new Date(message.internalDate),
      raw: Buffer.from(message.raw),
      ...(message.gmMsgId !== undefined && { gmMsgId: message.gmMsgId }),
    }));
  }

  async disconnect(user?: string): Promise<number> {
    const ending = [...this.sessions].filter(
      (session) => user === undefined || session.user?.name.toLowerCase() === user.toLowerCase(),
    );
    const graceMs = this.options.closeGraceMs ?? 200;
    await Promise.all(ending.map((session) => session.shutdown(graceMs, 'Session ended by the server')));
    return ending.length;
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    const listenerClosed = new Promise<void>((resolve, reject) =>
      this.server.close((err) => (err ? reject(err) : resolve())),
    );
    const graceMs = this.options.closeGraceMs ?? 200;
    await Promise.all([...this.sessions].map((session) => session.shutdown(graceMs)));
    await listenerClosed;
  }

  private accept(socket: Socket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    const session = new Session(socket, {
      id: this.nextSessionId++,
      store: this.store,
      faults: this.faults,
      settings: {
        saslIr: this.options.saslIr ?? true,
        verifyAccessToken: this.options.verifyAccessToken,
        gmail: this.options.gmail ?? false,
      },
      trace: this.options.trace,
    });
    this.sessions.add(session);
    socket.once('close', () => this.sessions.delete(session));
  }

  private find(user: string, mailbox: string): { account: UserAccount; mailbox: Mailbox } {
    const account = this.store.user(user);
    return { account, mailbox: this.store.mailbox(account, mailbox) };
  }
}

/**
 * Starts a fake IMAP server and resolves once it listens.
 *
 * @example
 * const server = await startFakeImap({ users: [{ user: 'agent@example.com', password: 'secret' }] });
 * server.append('agent@example.com', 'INBOX', 'Subject: hello\r\n\r\nHi\r\n');
 * // ... new ImapFlow({ host: server.host, port: server.port, secure: false, auth: { user, pass } })
 * await server.close();
 */
export async function startFakeImap(options: FakeImapOptions = {}): Promise<FakeImapServer> {
  const server = createServer();
  const fake = new FakeImap(server, options);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  return fake;
}
