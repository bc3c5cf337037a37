/** A mailbox that may authenticate with AUTH PLAIN or AUTH LOGIN. */
export interface SmtpHarnessUser {
  user: string;
  password: string;
}

/** TLS material; without it the harness speaks cleartext only (STARTTLS disabled). */
export interface SmtpHarnessTls {
  /** PEM private key. */
  key: string | Buffer;
  /** PEM certificate (chain). */
  cert: string | Buffer;
  /** Implicit TLS from the first byte (port 465 style) instead of STARTTLS. [secure=false] */
  secure?: boolean;
}

export interface SmtpHarnessOptions {
  /** Interface to listen on. [host='127.0.0.1'] */
  host?: string;
  /** TCP port; 0 picks a free one, which `start()` reuses after `stop()`. [port=0] */
  port?: number;
  /** Accounts accepted by AUTH PLAIN and AUTH LOGIN. [users=[]] */
  users?: SmtpHarnessUser[];
  /** Valid XOAUTH2 bearer tokens by user name. [accessTokens={}] */
  accessTokens?: Record<string, string>;
  /** Also accept XOAUTH2 tokens this callback approves (e.g. `FakeIdp.verifyAccessToken`). */
  verifyAccessToken?: (user: string, token: string) => boolean;
  /**
   * Accept MAIL FROM without AUTH. [authOptional=true when neither `users` nor
   * `accessTokens` is given, false otherwise]
   */
  authOptional?: boolean;
  /** Largest message accepted, in bytes; larger ones get `552`. Unset: no limit. */
  size?: number;
  /** Offer SMTPUTF8 (RFC 6531) in the EHLO reply. [smtpUtf8=true] */
  smtpUtf8?: boolean;
  /** Key and certificate to offer STARTTLS (or implicit TLS). Unset: cleartext only. */
  tls?: SmtpHarnessTls;
  /** Host name in the greeting and EHLO reply. [name='mailroom-smtp-harness'] */
  name?: string;
  /** Idle time before the server closes a silent client, in milliseconds. [socketTimeoutMs=60000] */
  socketTimeoutMs?: number;
}

/** A message the harness received (whole DATA, the final dot seen). */
export interface ReceivedMessage {
  envelope: {
    /** MAIL FROM address; '' for the null sender. */
    from: string;
    /** RCPT TO addresses that were accepted, in order. */
    to: string[];
    /** Whether MAIL FROM carried the SMTPUTF8 parameter (RFC 6531). */
    smtpUtf8: boolean;
  };
  /** The message exactly as sent after DATA, dot-unstuffed, without the final dot. */
  raw: Buffer;
  /** When the final dot arrived. */
  receivedAt: Date;
  /** Authenticated user name, if the session authenticated. */
  user?: string;
  /** Whether the message came over TLS (implicit, or after STARTTLS). */
  secure: boolean;
  /** smtp-server's connection id. */
  sessionId: string;
  /**
   * False when a `dropAt('afterData')` fault closed the connection instead of
   * answering 250: the client does not know the message arrived.
   */
  acknowledged: boolean;
}

/** An AUTH command the harness answered (never the password or token itself). */
export interface AuthAttempt {
  /** PLAIN, LOGIN or XOAUTH2. */
  method: string;
  user: string;
  /** False when the harness answered 535. */
  accepted: boolean;
}
