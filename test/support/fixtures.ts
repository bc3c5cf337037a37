/** Request bodies for tests: a valid e-mail server and destination, with overrides. */

export const CANARY_PASSWORD = 'canary-Pa55w0rd-7f3e9b';

export function serverBody(n: number | string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: `Server ${n}`,
    imap: {
      host: 'imap.example.com',
      user: `agent${n}@example.com`,
      auth: { method: 'password', password: CANARY_PASSWORD, confirmPassword: CANARY_PASSWORD },
    },
    smtp: { host: 'smtp.example.com', port: 587, auth: { mode: 'imap' } },
    ...overrides,
  };
}

/** The `imap` part of a server body for a harness on loopback, without TLS, logging in with a password. */
export function loopbackImap(port: number, user: string, password: string): Record<string, unknown> {
  return { host: '127.0.0.1', port, secure: false, user, auth: { method: 'password', password } };
}

/**
 * A server body whose mailbox is watched on an IMAP harness on loopback (password login, no TLS);
 * its SMTP side sends without authentication to a port nobody listens on.
 */
export function loopbackServerBody(
  name: string,
  imapPort: number,
  user: string,
  password: string,
  overrides: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    name,
    imap: loopbackImap(imapPort, user, password),
    smtp: { host: '127.0.0.1', port: 2525, auth: { mode: 'none' } },
    ...overrides,
  };
}

/** The `auth` of a server side signing in with a device code at the fake identity provider `idpUrl`. */
export function deviceCodeAuth(idpUrl: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    method: 'oauth2',
    clientId: 'public-client',
    directoryId: 'contoso-directory',
    authorityHost: idpUrl,
    ...extra,
  };
}

export function destinationBody(n: number | string, serverId: string | null, overrides: Record<string, unknown> = {}) {
  return {
    name: `Destination ${n}`,
    address: `support${n}@example.com`,
    description: 'Customer support',
    fromText: 'ACME Support',
    serverId,
    ...overrides,
  };
}
