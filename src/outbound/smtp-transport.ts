import { Readable } from 'node:stream';
import { rootCertificates } from 'node:tls';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import XOAuth2 from 'nodemailer/lib/xoauth2';
import type { LoginCredentials } from '../auth/credentials.js';
import { readCaFile } from '../shared/ca-file.js';
import { openHttpTunnel } from '../shared/http-tunnel.js';
import { proxyFor, type MailProxies } from '../shared/mail-proxies.js';
import { AddressPolicy } from '../shared/address-policy.js';
import { mailTarget, type MailTarget } from '../shared/mail-target.js';
import { spokePlainText } from '../shared/tls-fallback.js';
import type { TlsMode } from '../shared/tls-mode.js';
import type { EmailServerRow } from '../store/rows.js';
import type { SmtpTimeouts } from './options.js';
import { envelopeFor, offersSmtpUtf8 } from './smtp-envelope.js';

/**
 * The one place Mailroom talks SMTP: one kept-open connection to an account's relay (nodemailer's
 * SMTPConnection), messages one at a time in the order they are given.
 *
 * It drives the connection itself, as nodemailer's pool does (connect, log in, send, RSET after a
 * refused message, a new connection after an error), instead of going through nodemailer's
 * Mailer: the messages are already compiled (the spool's bytes), and the Mailer compiles every
 * one again into a MIME tree of its own (boundaries from the random generator, address parsing,
 * a stream pipeline per message) before handing the bytes to the same SMTPConnection. That cost
 * the outbound benchmark's drain a fifth of its time.
 */
export interface SmtpTransportOptions {
  host: string;
  port: number;
  /**
   * How the connection is encrypted (`shared/tls-mode.ts`), as nodemailer's SMTPConnection options
   * (https://nodemailer.com/smtp/ "TLS options"): `implicit` is `secure: true` (falling back to
   * STARTTLS, required, when the server answers TLS in plain text: `tls-fallback.ts`);
   * `starttls-required` is `requireTLS: true` (no STARTTLS offered: refused before AUTH);
   * `starttls-when-offered` is nodemailer's default (STARTTLS whenever EHLO offers it); `none` is
   * `ignoreTLS: true` (plain text even where STARTTLS is offered).
   */
  tls: TlsMode;
  /** Certificates trusted besides the system's (PEM), e.g. a private CA. */
  ca?: string | Buffer;
  /**
   * A PEM file of such certificates (the server's `smtp.caFile`), read for each new connection: a
   * file that went missing or bad fails the connection with code `ECAFILE`, naming the file.
   */
  caFile?: string | undefined;
  /** An HTTP proxy the connection goes through (HTTP CONNECT tunnel; TLS inside it, end to end). */
  proxy?: URL | undefined;
  /**
   * The addresses `host` may lead to, checked at each connection and connected to as checked
   * (`shared/mail-target.ts`): for a host a tenant chose (MAILROOM_MAIL_ALLOW_PRIVATE). None: any.
   */
  addresses?: AddressPolicy | undefined;
  login: LoginCredentials | null;
  /** [30000] connect budget, ms. */
  connectionTimeoutMs?: number;
  /** [30000] wait for the greeting, ms. */
  greetingTimeoutMs?: number;
  /** [120000] socket inactivity during a transaction, ms. */
  socketTimeoutMs?: number;
}

export interface SendResult {
  response: string;
  accepted: string[];
  rejected: string[];
  /** The recipients the server refused while it took the message for others, with its reply to each. */
  refused: RecipientRefusal[];
}

/** A recipient the server refused at RCPT TO while it took the message for the others. */
export interface RecipientRefusal {
  address: string;
  /** The server's reply to RCPT TO. */
  reply: string;
  responseCode: number | null;
}

/** An error from SMTPConnection: a code of nodemailer's (ECONNECTION, EENVELOPE, …) and the server's reply. */
interface SmtpError extends Error {
  code?: string;
  responseCode?: number;
}

/** Codes of a connection that broke (as opposed to a refused message or login). */
const CONNECTION_CODES = new Set(['ECONNECTION', 'ESOCKET', 'ETIMEDOUT']);

/**
 * The transport options of an account's SMTP settings, with the engine's timeouts where set,
 * through the proxy the account chooses of `proxies` (PROXY_NOT_CONFIGURED when it names one
 * the engine does not have); a host a tenant chose only where `mailAddresses`
 * (MAILROOM_MAIL_ALLOW_PRIVATE) allows.
 */
const PUBLIC_ONLY = AddressPolicy.strict();

export function smtpTransportOptions(
  server: Pick<EmailServerRow, 'smtpHost' | 'smtpPort' | 'smtpTls' | 'smtpCaFile' | 'proxy' | 'hostsByTenant'>,
  login: LoginCredentials | null,
  timeouts: SmtpTimeouts,
  proxies?: MailProxies,
  mailAddresses: AddressPolicy = PUBLIC_ONLY,
): SmtpTransportOptions {
  const proxy = proxyFor(server.proxy, proxies);
  return {
    ...(server.hostsByTenant && { addresses: mailAddresses }),
    host: server.smtpHost,
    port: server.smtpPort,
    tls: server.smtpTls,
    ...(server.smtpCaFile !== null && { caFile: server.smtpCaFile }),
    login,
    ...(proxy && { proxy }),
    ...(timeouts.connectionMs !== undefined && { connectionTimeoutMs: timeouts.connectionMs }),
    ...(timeouts.greetingMs !== undefined && { greetingTimeoutMs: timeouts.greetingMs }),
    ...(timeouts.socketMs !== undefined && { socketTimeoutMs: timeouts.socketMs }),
  };
}

/** How a send goes (see {@link SmtpTransport.send}). */
export interface SendOptions {
  /** The final dot waits for it; rejected, the transaction is aborted before the dot. */
  beforeDot?: Promise<unknown> | undefined;
  /** Asked just before MAIL FROM: false gives the message up unsent. */
  mayBegin?: () => boolean;
}

/** The error code of a send given up by its `mayBegin` (nothing of the message was sent). */
export const NOT_BEGUN = 'ENOTBEGUN';

export class SmtpTransport {
  /** The open, logged-in connection between messages; null until the first send and after an error. */
  private connection: SMTPConnection | null = null;
  /** Operations run one after another: a send or a probe waits for the one before. */
  private turn: Promise<unknown> = Promise.resolve();
  /** The connection a message is on its way over (its errors reach the send's callback). */
  private sending: SMTPConnection | null = null;
  private closed = false;
  /** Connections that logged in (the others had no credentials, or the server offered no AUTH). */
  private readonly loggedIn = new WeakSet<SMTPConnection>();
  /** Connections whose server offered SMTPUTF8 in its (last) EHLO reply. */
  private readonly smtpUtf8 = new WeakSet<SMTPConnection>();
  /** With `tls: implicit`: the server answered TLS in plain text once, so connections use STARTTLS (required). */
  private startTls = false;

  constructor(private readonly options: SmtpTransportOptions) {}

  /**
   * Sends raw RFC 5322 bytes; resolves after the server's 250 to the final dot. With `beforeDot`
   * the whole message goes out at once but the final dot waits for that promise (the previous
   * message's delivery being on record): the transfer overlaps the bookkeeping, yet the server
   * never holds more than one message the engine has not recorded. A rejected `beforeDot`
   * aborts the transaction before the dot. `mayBegin` is asked once the connection is ready, just
   * before MAIL FROM: false gives the message up unsent (rejects with {@link NOT_BEGUN}), the
   * connection kept for the next one.
   */
  send(envelope: { from: string; to: string[] }, raw: Buffer, options: SendOptions = {}): Promise<SendResult> {
    return this.inTurn(() => this.sendNow(envelope, raw, options, true));
  }

  /**
   * Connects and authenticates on a connection of its own, without sending: the relay probe.
   * Resolves with whether it logged in (false: no credentials, or the server offers no AUTH).
   */
  verify(): Promise<boolean> {
    return this.probe().then((p) => p.loggedIn);
  }

  /** As `verify`, also telling whether the session was encrypted (TLS from the start, or STARTTLS). */
  probe(): Promise<{ loggedIn: boolean; encrypted: boolean }> {
    return this.inTurn(async () => {
      const connection = await this.open();
      // nodemailer's SMTPConnection `secure`: true once TLS is on, upgraded by STARTTLS included.
      const encrypted = connection.secure;
      connection.quit();
      return { loggedIn: this.loggedIn.has(connection), encrypted };
    });
  }

  close(): void {
    this.closed = true;
    this.drop();
  }

  private inTurn<T>(op: () => Promise<T>): Promise<T> {
    const run = this.turn.then(op, op);
    this.turn = run.catch(() => undefined);
    return run;
  }

  private async sendNow(
    envelope: { from: string; to: string[] },
    raw: Buffer,
    options: SendOptions,
    mayRetry: boolean,
  ): Promise<SendResult> {
    if (this.closed) throw Object.assign(new Error('the SMTP transport is closed'), { code: 'ECONNECTION' });
    const reused = mayRetry && this.connection !== null;
    const connection = this.connection ?? (this.connection = await this.open());
    if (options.mayBegin?.() === false) {
      throw Object.assign(new Error('given up before the transaction began'), { code: NOT_BEGUN });
    }
    // Unicode domains as punycode for a server without SMTPUTF8; a Unicode local part refused
    // there (ESMTPUTF8) before anything is sent, the connection kept for the next message.
    const wire = envelopeFor(envelope, this.smtpUtf8.has(connection), this.options.host);
    const body = messageStream(raw, options.beforeDot);
    this.sending = connection;
    try {
      const info = await new Promise<SMTPConnection.SentMessageInfo>((resolve, reject) => {
        // Closed while the message is on its way (close(), e.g. new settings, or the socket): the
        // callback would never come (nodemailer drops what waits for a reply when it closes).
        const closed = (): void =>
          reject(
            Object.assign(new Error('the connection closed while the message was on its way'), {
              code: 'ECONNECTION',
            }),
          );
        connection.once('end', closed);
        // A copy: nodemailer writes its state into the envelope it is given (a refused MAIL FROM
        // as `mailError`), which would fail the same message again when it is retried.
        connection.send(wire, body.stream, (err, result) => {
          connection.removeListener('end', closed);
          if (err) reject(err);
          else resolve(result);
        });
      });
      // The addresses as the caller gave them (a punycode domain on the wire is the stored Unicode one).
      const asGiven = (address: string): string => envelope.to[wire.to.indexOf(address)] ?? address;
      return {
        response: info.response ?? '',
        accepted: addresses(info.accepted).map(asGiven),
        rejected: addresses(info.rejected).map(asGiven),
        refused: refusalsOf(info).map((r) => ({ ...r, address: asGiven(r.address) })),
      };
    } catch (err) {
      this.sending = null;
      const { code, responseCode } = err as SmtpError;
      if (reused && !body.started() && code !== undefined && CONNECTION_CODES.has(code)) {
        // The server closed the kept connection while it was idle, before a byte of the message
        // went: the message goes once more, over a new connection (as nodemailer's pool does).
        this.drop();
        return this.sendNow(envelope, raw, options, false);
      }
      if ((code === 'EENVELOPE' || code === 'EMESSAGE') && responseCode !== 421) {
        // The server refused this message; the connection is fine once its session is reset.
        const reset = await new Promise<boolean>((resolve) => connection.reset((e) => resolve(!e)));
        if (!reset) this.drop();
      } else {
        this.drop();
      }
      throw err;
    } finally {
      this.sending = null;
    }
  }

  /**
   * A new connection, greeted and logged in (when there are credentials and the server offers
   * AUTH). With `tls: implicit`, TLS from the first byte; should the server answer that in plain
   * text, STARTTLS, required (and from then on for this transport).
   */
  private async open(): Promise<SMTPConnection> {
    try {
      return await this.openOnce();
    } catch (err) {
      if (this.options.tls !== 'implicit' || this.startTls || !spokePlainText(err)) throw err;
      this.startTls = true;
      return this.openOnce();
    }
  }

  private async openOnce(): Promise<SMTPConnection> {
    const { options } = this;
    const mode = options.tls === 'implicit' && this.startTls ? 'starttls-required' : options.tls;
    const connectionTimeoutMs = options.connectionTimeoutMs ?? 30_000;
    const ca = options.caFile === undefined ? options.ca : await readCaFileAsConnectionError(options.caFile);
    const target = await checkedTarget(options);
    // Through a proxy: the tunnel is the connection; nodemailer speaks SMTP (and TLS) over it.
    const tunnel = options.proxy
      ? await openHttpTunnel(options.proxy, target.host, options.port, connectionTimeoutMs)
      : undefined;
    const connection = new SMTPConnection({
      host: target.host,
      ...(target.servername !== undefined && { servername: target.servername }),
      port: options.port,
      ...(tunnel && { connection: tunnel }),
      secure: mode === 'implicit',
      ...(mode === 'starttls-required' && { requireTLS: true }),
      ...(mode === 'none' && { ignoreTLS: true }),
      connectionTimeout: connectionTimeoutMs,
      greetingTimeout: options.greetingTimeoutMs ?? 30_000,
      socketTimeout: options.socketTimeoutMs ?? 120_000,
      tls: ca ? { ca: [...rootCertificates, String(ca)], rejectUnauthorized: true } : { rejectUnauthorized: true },
      logger: false,
    });
    return new Promise((resolve, reject) => {
      let settled = false;
      const fail = (err: Error): void => {
        if (settled) return;
        settled = true;
        connection.close();
        reject(err);
      };
      // Errors of a send reach its callback; an idle connection's error (the server timed it
      // out, a reset) only retires it. A listener must be there either way.
      connection.on('error', (err: Error) => {
        if (!settled) fail(err);
        else if (this.connection === connection && this.sending !== connection) this.drop();
      });
      connection.once('end', () => {
        fail(Object.assign(new Error('Connection closed before the session started'), { code: 'ECONNECTION' }));
        if (this.connection === connection) this.connection = null;
      });
      connection.connect((err?: Error | null) => {
        if (err) return fail(err);
        // Before logging in: the last reply is still the EHLO (after STARTTLS, the second one).
        if (offersSmtpUtf8(connection.lastServerResponse)) this.smtpUtf8.add(connection);
        const auth = authOf(options.login);
        if (!auth || !connection.allowsAuth) {
          settled = true;
          return resolve(connection);
        }
        connection.login(auth, (loginErr) => {
          if (loginErr) return fail(loginErr);
          this.loggedIn.add(connection);
          settled = true;
          resolve(connection);
        });
      });
    });
  }

  private drop(): void {
    const connection = this.connection;
    this.connection = null;
    connection?.close();
  }
}

/**
 * Where a connection goes: the host as it is, or (a host a tenant chose) the address checked
 * against the policy. A name that does not resolve fails as nodemailer's own lookup does (EDNS).
 */
async function checkedTarget(options: SmtpTransportOptions): Promise<MailTarget> {
  try {
    return await mailTarget(options.host, options.addresses, { viaProxy: options.proxy !== undefined });
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') throw Object.assign(err as Error, { code: 'EDNS' });
    throw err;
  }
}

/** The CA file's certificates; a file that cannot be used fails the connection (`ECAFILE`), naming it. */
async function readCaFileAsConnectionError(path: string): Promise<string> {
  try {
    return await readCaFile(path);
  } catch (err) {
    throw Object.assign(new Error(`${(err as Error).message} ('smtp.caFile')`), { code: 'ECAFILE' });
  }
}

/** The login as SMTPConnection takes it: a password, or an OAuth 2.0 access token (XOAUTH2). */
function authOf(login: LoginCredentials | null): SMTPConnection.AuthenticationType | null {
  if (!login) return null;
  if ('pass' in login) return { credentials: { user: login.user, pass: login.pass } };
  return {
    type: 'OAuth2',
    user: login.user,
    method: 'XOAUTH2',
    oauth2: new XOAuth2({ user: login.user, accessToken: login.accessToken }, false),
  };
}

/** nodemailer's errors of the recipients it refused (the accepted ones got the message). */
function refusalsOf(info: SMTPConnection.SentMessageInfo): RecipientRefusal[] {
  const errors = (info.rejectedErrors ?? []) as Array<SMTPConnection.SMTPError & { recipient?: string }>;
  const refused = errors.map((e) => ({
    address: e.recipient ?? '',
    reply: String(e.response ?? e.message).slice(0, 1000),
    responseCode: typeof e.responseCode === 'number' ? e.responseCode : null,
  }));
  // A rejected address without its error (never seen from nodemailer): refused all the same.
  for (const address of addresses(info.rejected)) {
    if (!refused.some((r) => r.address === address)) refused.push({ address, reply: 'refused', responseCode: null });
  }
  return refused;
}

function addresses(list: Array<string | { address?: string }> | undefined): string[] {
  return (list ?? []).map((x) => (typeof x === 'string' ? x : (x.address ?? '')));
}

/**
 * The message bytes as a stream that knows whether it has been read (the server asked for the
 * data), and that ends (letting the final dot go) only once `gate` settles, when there is one.
 */
function messageStream(raw: Buffer, gate: Promise<unknown> | undefined): { stream: Readable; started: () => boolean } {
  let started = false;
  const stream = new Readable({
    read() {
      if (started) return;
      started = true;
      this.push(raw);
      if (!gate) {
        this.push(null);
        return;
      }
      gate.then(
        () => this.push(null),
        (err: unknown) => this.destroy(err instanceof Error ? err : new Error(String(err))),
      );
    },
  });
  return { stream, started: () => started };
}
