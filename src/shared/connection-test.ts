import type { TlsMode } from './tls-mode.js';
/** The outcome of one side of an e-mail server's connection test ("Test connection"). */
export interface ConnectionTestResult {
  ok: boolean;
  /** What happened, in words an administrator can act on (never a secret). */
  detail: string;
  /** How long the test took, ms. */
  ms: number;
}

/** How long each side of a connection test may take to connect and to be greeted, ms. */
export const CONNECTION_TEST_TIMEOUT_MS = 15_000;

/** Runs `attempt` and times it; a failure becomes `{ ok: false }` with `describe(err)`. */
export async function timedTest(
  attempt: () => Promise<string>,
  describe: (err: unknown) => string,
): Promise<ConnectionTestResult> {
  const started = performance.now();
  const ms = (): number => Math.round(performance.now() - started);
  try {
    const detail = await attempt();
    return { ok: true, detail, ms: ms() };
  } catch (err) {
    return { ok: false, detail: describe(err), ms: ms() };
  }
}

/**
 * A server that refused an OAuth 2.0 access token fresh from the identity provider: the sign-in
 * works, but the account or app may not open this mailbox that way. Words for that, not for a password.
 */
export function oauthRefused(side: 'IMAP' | 'SMTP', user: string, err: unknown): string {
  const e = err as { responseText?: string; response?: string };
  const said = e.responseText ?? e.response;
  return (
    `the ${side} server refused the OAuth 2.0 access token for ${user}, also a fresh one from the identity ` +
    `provider${said ? ` (the server said: ${String(said).slice(0, 200)})` : ''}: check that the account signed in ` +
    `(or the app, for client credentials) may open this mailbox over ${side} with OAuth 2.0 (its permissions, and ` +
    `${side} with OAuth enabled for the mailbox), and that the user name is that mailbox`
  );
}

/** What the administrator should know of a login that went without TLS (the password in clear). */
export function inClear(encrypted: boolean, tls: TlsMode): string {
  if (encrypted) return '';
  return tls === 'none'
    ? ' (without TLS: tls is none, the credentials went in clear)'
    : ' (without TLS: the server offered no STARTTLS, the credentials went in clear)';
}
