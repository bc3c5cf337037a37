import { Readable } from 'node:stream';
import nodemailer, { type Transporter } from 'nodemailer';
import type { LoginCredentials } from '../auth/credentials.js';

/**
 * The one place nodemailer's transport is used: a pooled connection to one account's relay.
 * Messages go one at a time per connection, in the order they are given.
 */
export interface SmtpTransportOptions {
  host: string;
  port: number;
  /** Implicit TLS; without it STARTTLS is used when the server offers it. */
  secure: boolean;
  login: LoginCredentials | null;
  /** [1] connections kept open; one keeps strict order. */
  maxConnections?: number;
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
}

export class SmtpTransport {
  private readonly transport: Transporter;

  constructor(options: SmtpTransportOptions) {
    const auth = options.login
      ? 'pass' in options.login
        ? { user: options.login.user, pass: options.login.pass }
        : { type: 'OAuth2' as const, user: options.login.user, accessToken: options.login.accessToken }
      : undefined;
    this.transport = nodemailer.createTransport({
      host: options.host,
      port: options.port,
      secure: options.secure,
      pool: true,
      maxConnections: options.maxConnections ?? 1,
      maxMessages: Infinity,
      ...(auth && { auth }),
      connectionTimeout: options.connectionTimeoutMs ?? 30_000,
      greetingTimeout: options.greetingTimeoutMs ?? 30_000,
      socketTimeout: options.socketTimeoutMs ?? 120_000,
      tls: { rejectUnauthorized: true },
      logger: false,
    });
  }

  /**
   * Sends raw RFC 5322 bytes; resolves after the server's 250 to the final dot. With `beforeDot`
   * the whole message goes out at once but the final dot waits for that promise (the previous
   * message's delivery being on record): the transfer overlaps the bookkeeping, yet the server
   * never holds more than one message the engine has not recorded. A rejected `beforeDot`
   * aborts the transaction before the dot. `messageId` (the one in `raw`, without angle brackets)
   * spares nodemailer making up one of its own for the raw message it never changes.
   */
  async send(
    envelope: { from: string; to: string[] },
    raw: Buffer,
    beforeDot?: Promise<unknown>,
    messageId?: string,
  ): Promise<SendResult> {
    const body = beforeDot ? heldBeforeDot(raw, beforeDot) : raw;
    const info = (await this.transport.sendMail({
      envelope,
      raw: body,
      ...(messageId !== undefined && { messageId: `<${messageId}>` }),
    })) as {
      response?: string;
      accepted?: Array<string | { address: string }>;
      rejected?: Array<string | { address: string }>;
    };
    const list = (v: Array<string | { address: string }> | undefined): string[] =>
      (v ?? []).map((x) => (typeof x === 'string' ? x : x.address));
    return { response: info.response ?? '', accepted: list(info.accepted), rejected: list(info.rejected) };
  }

  /** Connects and authenticates without sending: the relay probe. */
  async verify(): Promise<void> {
    await this.transport.verify();
  }

  close(): void {
    this.transport.close();
  }
}

/** The message bytes as a stream that ends (and so lets the final dot go) only once `gate` settles. */
function heldBeforeDot(raw: Buffer, gate: Promise<unknown>): Readable {
  let started = false;
  return new Readable({
    read() {
      if (started) return;
      started = true;
      this.push(raw);
      gate.then(
        () => this.push(null),
        (err: unknown) => this.destroy(err instanceof Error ? err : new Error(String(err))),
      );
    },
  });
}
