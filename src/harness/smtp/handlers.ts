import type {
  SMTPServerAddress,
  SMTPServerAuthentication,
  SMTPServerAuthenticationResponse,
  SMTPServerDataStream,
  SMTPServerError,
  SMTPServerSession,
} from 'smtp-server';
import type { SmtpFaults } from './faults.js';
import type { AuthAttempt, ReceivedMessage, SmtpHarnessUser } from './types.js';

type Done = (err?: Error | null) => void;
type AuthDone = (err: Error | null | undefined, response?: SMTPServerAuthenticationResponse) => void;

/** What the handlers need from the harness. */
export interface HandlerContext {
  users: readonly SmtpHarnessUser[];
  accessTokens: Readonly<Record<string, string>>;
  verifyAccessToken?: (user: string, token: string) => boolean;
  faults: SmtpFaults;
  /** Closes the TCP connection of a session at once, without a reply. */
  destroySession(session: SMTPServerSession): void;
  /** Records a received message. */
  record(message: ReceivedMessage): void;
  /** Records an AUTH attempt and whether it was accepted. */
  recordAuth(attempt: AuthAttempt): void;
  /** A client connected (before the greeting, which a slow-down may delay). */
  recordConnect(): void;
}

/** The smtp-server callbacks (`onConnect`, `onAuth`, …) that implement the harness. */
export interface SmtpHandlers {
  onConnect(session: SMTPServerSession, callback: Done): void;
  onAuth(auth: SMTPServerAuthentication, session: SMTPServerSession, callback: AuthDone): void;
  onMailFrom(address: SMTPServerAddress, session: SMTPServerSession, callback: Done): void;
  onRcptTo(address: SMTPServerAddress, session: SMTPServerSession, callback: Done): void;
  onData(stream: SMTPServerDataStream, session: SMTPServerSession, callback: Done): void;
}

/** An error whose `responseCode` smtp-server sends to the client. */
export function smtpError(code: number, message: string): SMTPServerError {
  const err: SMTPServerError = new Error(message);
  err.responseCode = code;
  return err;
}

export function createHandlers(ctx: HandlerContext): SmtpHandlers {
  const { faults } = ctx;
  return {
    onConnect(session, callback) {
      ctx.recordConnect();
      if (faults.takeDrop('connect') !== undefined) return ctx.destroySession(session);
      const reply = faults.takeReply('connect');
      callback(reply ? smtpError(reply.code, reply.message) : null);
    },

    onAuth(auth, _session, callback) {
      const username = auth.username ?? '';
      const accept = (): void => {
        ctx.recordAuth({ method: auth.method, user: username, accepted: true });
        callback(null, { user: username });
      };
      if (auth.method === 'XOAUTH2') {
        const expected = Object.hasOwn(ctx.accessTokens, username) ? ctx.accessTokens[username] : undefined;
        if (expected !== undefined && auth.accessToken === expected) return accept();
        if (ctx.verifyAccessToken?.(username, auth.accessToken ?? '') === true) return accept();
        ctx.recordAuth({ method: auth.method, user: username, accepted: false });
        // The client gets this JSON as a 334 challenge, then 535 (RFC 7628 style).
        return callback(null, { data: { status: '401', schemes: 'bearer', scope: 'https://mail.google.com/' } });
      }
      if (auth.method === 'PLAIN' || auth.method === 'LOGIN') {
        const ok = ctx.users.some((u) => u.user === username && u.password === auth.password);
        if (ok) return accept();
      }
      ctx.recordAuth({ method: auth.method, user: username, accepted: false });
      callback(smtpError(535, 'Authentication credentials invalid'));
    },

    onMailFrom(_address, _session, callback) {
      const reply = faults.takeReply('mailFrom');
      callback(reply ? smtpError(reply.code, reply.message) : null);
    },

    onRcptTo(address, _session, callback) {
      const reply = faults.takeRecipient(address.address);
      callback(reply ? smtpError(reply.code, reply.message) : null);
    },

    onData(stream, session, callback) {
      // smtp-server destroys the stream with an error if the client goes away mid-message.
      stream.on('error', () => undefined);
      const dropAfterBytes = faults.takeDrop('midData');
      if (dropAfterBytes !== undefined) {
        let bytes = 0;
        const drop = (): void => {
          stream.removeAllListeners('data');
          stream.resume();
          ctx.destroySession(session);
        };
        stream.on('data', (chunk: Buffer) => {
          bytes += chunk.length;
          if (bytes >= dropAfterBytes) drop();
        });
        stream.on('end', drop);
        return;
      }

      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        if (stream.sizeExceeded) return callback(); // rejectOversized answers 552
        const message = toReceived(session, Buffer.concat(chunks));
        if (faults.takeDrop('afterData') !== undefined) {
          ctx.record({ ...message, acknowledged: false });
          return ctx.destroySession(session);
        }
        const reply = faults.takeReply('data');
        if (reply) return callback(smtpError(reply.code, reply.message));
        ctx.record(message);
        callback();
      });
    },
  };
}

function toReceived(session: SMTPServerSession, raw: Buffer): ReceivedMessage {
  const { mailFrom, rcptTo } = session.envelope;
  const user: unknown = session.user;
  return {
    envelope: {
      from: mailFrom ? mailFrom.address : '',
      to: rcptTo.map((r) => r.address),
      smtpUtf8: session.envelope.smtpUtf8 === true,
    },
    raw,
    receivedAt: new Date(),
    ...(typeof user === 'string' ? { user } : {}),
    secure: session.secure,
    sessionId: session.id,
    acknowledged: true,
  };
}
