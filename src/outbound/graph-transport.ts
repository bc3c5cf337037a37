import type { LoginCredentials } from '../auth/credentials.js';
import type { AddressPolicy } from '../shared/address-policy.js';
import { graphPlaceOf, openGraphClient, type GraphClient } from '../shared/graph/graph-client.js';
import { headerAddresses } from '../shared/graph/mime-recipients.js';
import type { MailProxies } from '../shared/mail-proxies.js';
import type { EmailServerRow } from '../store/rows.js';
import { NOT_BEGUN, SmtpTransport, type SendOptions, type SendResult } from './smtp-transport.js';

/** What the account queue, the heartbeat and the connection test send through: SMTP or Microsoft Graph. */
export type MailTransport = Pick<SmtpTransport, 'send' | 'verify' | 'close'>;

export interface GraphTransportDeps {
  proxies?: MailProxies | undefined;
  /** [public addresses only] MAILROOM_MAIL_ALLOW_PRIVATE: where a host a tenant chose may lead. */
  mailAddresses?: AddressPolicy | undefined;
  /** [30000] budget of one request, ms. */
  timeoutMs?: number;
}

/**
 * The MIME message Graph is given: Graph sends to the recipients its headers name, not to an SMTP
 * envelope, so envelope recipients no header names (a blind copy) are added in a `Bcc` header,
 * which Graph removes before delivery (https://learn.microsoft.com/graph/outlook-send-mime-message).
 */
export function withEnvelopeRecipients(raw: Buffer, to: readonly string[]): Buffer {
  const named = headerAddresses(raw);
  const missing = to.filter((a) => !named.has(a.toLowerCase()));
  return missing.length === 0 ? raw : Buffer.concat([Buffer.from(`Bcc: ${missing.join(', ')}\r\n`), raw]);
}

/**
 * Sends through Microsoft Graph's sendMail with the MIME message as it was composed (base64,
 * `Content-Type: text/plain`): From, Message-ID, In-Reply-To and References stay exactly as
 * over SMTP. One request per message; a failure is a GraphError, whose SMTP-like `responseCode`
 * and `retryAfterMs` the delivery classifier reads (429: the queue waits at least Retry-After).
 */
export class GraphTransport implements MailTransport {
  private closed = false;

  constructor(private readonly client: GraphClient) {}

  async send(envelope: { from: string; to: string[] }, raw: Buffer, options: SendOptions = {}): Promise<SendResult> {
    if (this.closed) throw Object.assign(new Error('the Graph transport is closed'), { code: NOT_BEGUN });
    if (options.mayBegin && !options.mayBegin()) {
      throw Object.assign(new Error('given up before it was sent'), { code: NOT_BEGUN });
    }
    // The previous message's delivery is on record before this one goes (as SMTP's final dot waits).
    if (options.beforeDot) await options.beforeDot;
    await this.client.sendMime(withEnvelopeRecipients(raw, envelope.to));
    return {
      response: '202 Accepted (Microsoft Graph sendMail)',
      accepted: [...envelope.to],
      rejected: [],
      refused: [],
    };
  }

  /** Whether the sign-in opens the mailbox (Graph has no login step of its own). */
  async verify(): Promise<boolean> {
    await this.client.probe();
    return true;
  }

  close(): void {
    this.closed = true;
  }
}

/** A Graph transport for a server's row and login (its Graph host, mailbox, CA file and proxy). */
export async function graphTransportFor(
  server: EmailServerRow,
  login: LoginCredentials | null,
  deps: GraphTransportDeps,
): Promise<GraphTransport> {
  if (login === null || !('accessToken' in login)) throw new Error('Microsoft Graph needs an OAuth 2.0 sign-in');
  const place = graphPlaceOf(server, deps.proxies, deps.mailAddresses);
  // sendMail answers with no body: a small read limit.
  return new GraphTransport(
    await openGraphClient(place, login.accessToken, { maxSourceBytes: 1024 * 1024, timeoutMs: deps.timeoutMs }),
  );
}
