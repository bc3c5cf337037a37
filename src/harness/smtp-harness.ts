/**
 * A local SMTP server for tests and for users trying Mailroom without a mail provider:
 *
 *   const smtp = await startSmtpHarness({ users: [{ user: 'agent', password: 'secret' }] });
 *   // send to smtp.host:smtp.port, then: const [message] = await smtp.waitFor(1);
 *   smtp.faults.replyAt('mailFrom', 451);   // inject failures at runtime
 *   await smtp.close();
 *
 * Built on smtp-server; never logs. Faults are described in ./smtp/faults.ts.
 */
import type { Socket } from 'node:net';
import { SMTPServer, type SMTPServerOptions, type SMTPServerSession } from 'smtp-server';
import { SmtpFaults } from './smtp/faults.js';
import { createHandlers } from './smtp/handlers.js';
import { slowDownWrites, TimerSet } from './smtp/slow-socket.js';
import type { AuthAttempt, ReceivedMessage, SmtpHarnessOptions } from './smtp/types.js';

export { ANY_RECIPIENT, SmtpFaults } from './smtp/faults.js';
export type {
  DropOptions,
  FaultOptions,
  SlowOptions,
  SmtpDropPoint,
  SmtpReply,
  SmtpReplyPhase,
} from './smtp/faults.js';
export type {
  AuthAttempt,
  ReceivedMessage,
  SmtpHarnessOptions,
  SmtpHarnessTls,
  SmtpHarnessUser,
} from './smtp/types.js';

/** Default wait of `waitFor`, in milliseconds. */
const DEFAULT_WAIT_MS = 5_000;
/** Default idle timeout of a client connection, in milliseconds. */
const DEFAULT_SOCKET_TIMEOUT_MS = 60_000;

export interface SmtpHarness {
  readonly host: string;
  /** The port actually bound (the free port picked when `port: 0` was asked for). */
  readonly port: number;
  /** Messages received so far, oldest first. Tests may empty it with `messages.length = 0`. */
  readonly messages: ReceivedMessage[];
  /** AUTH commands answered so far, oldest first (to see a refused token and the retry). */
  readonly authentications: AuthAttempt[];
  /**
   * Every MAIL FROM and RCPT TO line as the client wrote it, on cleartext sessions (smtp-server
   * hands its handlers the address with a punycode domain already turned into Unicode).
   */
  readonly envelopeCommands: string[];
  /** Connections accepted so far (counted before the greeting is sent). */
  readonly connections: number;
  /** Runtime fault injection; see `SmtpFaults`. */
  readonly faults: SmtpFaults;
  /** True while the listener accepts connections. */
  readonly listening: boolean;
  /**
   * Resolves with the first `count` messages once that many have arrived; rejects after
   * `timeoutMs` milliseconds. [timeoutMs=5000]
   */
  waitFor(count: number, timeoutMs?: number): Promise<ReceivedMessage[]>;
  /**
   * Cuts every open connection but keeps listening: clients must connect and authenticate again
   * (e.g. with an access token that has expired meanwhile). Resolves once the sockets are closed.
   */
  dropConnections(): Promise<void>;
  /** Outage: stop listening (clients get ECONNREFUSED) and cut every open connection. */
  stop(): Promise<void>;
  /** Recovery: listen again on the same port after `stop()`. No-op while listening. */
  start(): Promise<void>;
  /** Stop for good, leaving no open handles; pending `waitFor` calls reject. Idempotent. */
  close(): Promise<void>;
}

interface Waiter {
  count: number;
  resolve(messages: ReceivedMessage[]): void;
  reject(err: Error): void;
}

/** Starts an SMTP harness and resolves once it listens. */
export async function startSmtpHarness(options: SmtpHarnessOptions = {}): Promise<SmtpHarness> {
  const harness = new LocalSmtpHarness(options);
  await harness.start();
  return harness;
}

class LocalSmtpHarness implements SmtpHarness {
  readonly host: string;
  readonly messages: ReceivedMessage[] = [];
  readonly authentications: AuthAttempt[] = [];
  readonly envelopeCommands: string[] = [];
  connections = 0;
  readonly faults = new SmtpFaults();
  private boundPort: number;
  private server: SMTPServer | undefined;
  private closed = false;
  private readonly sockets = new Set<Socket>();
  private readonly waiters = new Set<Waiter>();
  private readonly timers = new TimerSet();
  private readonly serverOptions: SMTPServerOptions;

  constructor(private readonly options: SmtpHarnessOptions) {
    this.host = options.host ?? '127.0.0.1';
    this.boundPort = options.port ?? 0;
    this.serverOptions = this.buildServerOptions();
  }

  get port(): number {
    return this.boundPort;
  }

  get listening(): boolean {
    return this.server !== undefined;
  }

  waitFor(count: number, timeoutMs = DEFAULT_WAIT_MS): Promise<ReceivedMessage[]> {
    if (this.messages.length >= count) return Promise.resolve(this.messages.slice(0, count));
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        count,
        resolve: (messages) => {
          clearTimeout(timer);
          this.waiters.delete(waiter);
          resolve(messages);
        },
        reject: (err) => {
          clearTimeout(timer);
          this.waiters.delete(waiter);
          reject(err);
        },
      };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new Error(`SMTP harness: ${this.messages.length} of ${count} messages after ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.add(waiter);
    });
  }

  async start(): Promise<void> {
    if (this.closed) throw new Error('SMTP harness is closed');
    if (this.server) return;
    const server = new SMTPServer(this.serverOptions);
    server.on('error', () => undefined); // client errors (resets, timeouts) are expected here
    const connect = server.connect.bind(server);
    server.connect = (socket, socketOptions) => {
      slowDownWrites(socket, () => this.faults.slowness, this.timers);
      tapEnvelopeCommands(socket, this.envelopeCommands);
      connect(socket, socketOptions);
    };
    server.server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.server.once('error', reject);
      server.listen(this.boundPort, this.host, () => {
        server.server.off('error', reject);
        resolve();
      });
    });
    const address = server.server.address();
    if (address && typeof address === 'object') this.boundPort = address.port;
    this.server = server;
  }

  async dropConnections(): Promise<void> {
    const closing = [...this.sockets].map(
      (socket) => new Promise<void>((resolve) => (socket.closed ? resolve() : socket.once('close', () => resolve()))),
    );
    for (const socket of this.sockets) socket.destroy();
    await Promise.all(closing);
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    const closed = new Promise<void>((resolve) => server.close(resolve));
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    this.timers.clear();
    await closed;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const waiter of this.waiters) waiter.reject(new Error('SMTP harness closed while waiting for messages'));
    await this.stop();
  }

  private record(message: ReceivedMessage): void {
    this.messages.push(message);
    for (const waiter of this.waiters) {
      if (this.messages.length >= waiter.count) waiter.resolve(this.messages.slice(0, waiter.count));
    }
  }

  private destroySession(session: SMTPServerSession): void {
    for (const connection of this.server?.connections ?? []) {
      if (connection.id === session.id) connection._socket.destroy();
    }
  }

  private buildServerOptions(): SMTPServerOptions {
    const { users = [], accessTokens = {}, tls } = this.options;
    const handlers = createHandlers({
      users,
      accessTokens,
      verifyAccessToken: this.options.verifyAccessToken,
      faults: this.faults,
      destroySession: (session) => this.destroySession(session),
      record: (message) => this.record(message),
      recordAuth: (attempt) => this.authentications.push(attempt),
      recordConnect: () => (this.connections += 1),
    });
    return {
      ...handlers,
      name: this.options.name ?? 'mailroom-smtp-harness',
      logger: false,
      disableReverseLookup: true,
      authMethods: ['PLAIN', 'LOGIN', 'XOAUTH2'],
      allowInsecureAuth: true,
      authOptional:
        this.options.authOptional ??
        (users.length === 0 && Object.keys(accessTokens).length === 0 && !this.options.verifyAccessToken),
      socketTimeout: this.options.socketTimeoutMs ?? DEFAULT_SOCKET_TIMEOUT_MS,
      ...(this.options.size !== undefined ? { size: this.options.size, rejectOversized: true } : {}),
      // smtp-server offers SMTPUTF8 (RFC 6531) unless told to hide it.
      ...(this.options.smtpUtf8 === false && { hideSMTPUTF8: true }),
      ...(tls ? { key: tls.key, cert: tls.cert, secure: tls.secure ?? false } : { disabledCommands: ['STARTTLS'] }),
    };
  }
}

/** Copies the MAIL FROM and RCPT TO lines a client sends (cleartext) into `into`, as written. */
function tapEnvelopeCommands(socket: Socket, into: string[]): void {
  let pending = '';
  socket.on('data', (chunk: Buffer) => {
    pending += chunk.toString('utf8');
    const lines = pending.split('\r\n');
    pending = (lines.pop() ?? '').slice(-4096);
    for (const line of lines) if (/^(MAIL FROM|RCPT TO):/i.test(line)) into.push(line);
  });
}
