import { isMailroomError } from '../shared/errors.js';
import { describeRefusedAddress } from '../shared/mail-target.js';

/**
 * What an IMAP failure was, from the facts imapflow puts on its errors (`authenticationFailed`,
 * `serverResponseCode`, `responseText`, Node's socket `code`) — pure, so that a table test pins
 * it as `outbound/delivery-error.ts` pins SMTP replies — and the words the status shows for it.
 */

export type ImapErrorKind =
  /** The server refused the login (wrong password, expired or revoked token). */
  | 'auth'
  /** The port refused the connection. */
  | 'refused'
  /** The host name does not resolve. */
  | 'unresolved'
  /** No answer in time (connect, greeting or a command). */
  | 'timeout'
  /** The server answered a command with NO or BAD (its own words say why). */
  | 'server'
  /** Anything else (a dropped connection, an unexpected answer). */
  | 'other';

interface ImapErrorFacts {
  message?: string;
  code?: string;
  responseText?: string;
  serverResponseCode?: string;
  authenticationFailed?: boolean;
  command?: string;
}

function factsOf(err: unknown): ImapErrorFacts {
  return typeof err === 'object' && err !== null ? (err as ImapErrorFacts) : {};
}

/** imapflow's error facts that tell a bad password from a bad network. */
export function isAuthFailure(err: unknown): boolean {
  const e = factsOf(err);
  return e.authenticationFailed === true || e.serverResponseCode === 'AUTHENTICATIONFAILED';
}

export function classifyImapError(err: unknown): ImapErrorKind {
  if (isAuthFailure(err)) return 'auth';
  const e = factsOf(err);
  switch (e.code) {
    case 'ECONNREFUSED':
      return 'refused';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'unresolved';
    case 'ETIMEDOUT':
    case 'CONNECT_TIMEOUT':
    case 'GREETING_TIMEOUT':
      return 'timeout';
    default:
      return e.responseText !== undefined || e.serverResponseCode !== undefined ? 'server' : 'other';
  }
}

/**
 * An IMAP command the server (or the connection) failed, naming the command: "UID FETCH failed"
 * says where, imapflow's "Command failed" does not. The original error's facts stay on it, so
 * that the classification above reads the same.
 */
export class ImapCommandError extends Error {
  readonly command: string;
  readonly code: string | undefined;
  readonly responseText: string | undefined;
  readonly serverResponseCode: string | undefined;
  readonly authenticationFailed: boolean | undefined;

  constructor(command: string, cause: unknown) {
    const e = factsOf(cause);
    // imapflow's "Command failed" adds nothing to "<command> failed"; the server's words follow (describeImapError).
    const said = e.message ?? String(cause);
    super(said === 'Command failed' ? `${command} failed` : `${command} failed: ${said}`, { cause });
    this.name = 'ImapCommandError';
    this.command = command;
    this.code = e.code;
    this.responseText = e.responseText;
    this.serverResponseCode = e.serverResponseCode;
    this.authenticationFailed = e.authenticationFailed;
  }
}

/**
 * An error in plain words, without secrets, for a server's status and Test connection. `state`
 * is what the watcher was doing: logging in (`authError`: the login was refused or no
 * credentials are usable) or anything else.
 */
export function describeImapError(err: unknown, state: 'authError' | 'connectError'): string {
  if (isMailroomError(err)) return err.message;
  const refused = describeRefusedAddress(err, 'IMAP');
  if (refused !== undefined) return refused;
  const e = factsOf(err);
  if (state === 'authError') {
    return `the server refused the login${e.responseText ? `: ${e.responseText}` : ''} (check the user name and password)`;
  }
  const code = e.code ? ` (${e.code})` : '';
  switch (classifyImapError(err)) {
    case 'refused':
      return 'the server refused the connection: check the host name and port' + code;
    case 'unresolved':
      return 'the host name does not resolve' + code;
    case 'timeout':
      return 'the server did not answer in time' + code;
    default: {
      // imapflow's "Command failed" says nothing of why; the server's own words do (a mailbox
      // that does not exist, a quota, a server in maintenance).
      const said = e.responseText ? ` (the server said: ${e.responseText.slice(0, 200)})` : '';
      return `${e.message ?? String(err)}${said}${code}`;
    }
  }
}
