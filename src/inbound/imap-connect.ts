import type { CredentialService } from '../auth/credentials.js';
import { readCaFile } from '../shared/ca-file.js';
import type { Logger } from '../shared/logger.js';
import { AddressPolicy } from '../shared/address-policy.js';
import { proxyFor, type MailProxies } from '../shared/mail-proxies.js';
import { mailTarget } from '../shared/mail-target.js';
import type { EmailServerRow } from '../store/rows.js';
import { ImapSession, type ImapSessionOptions } from './imap-session.js';

/** What an IMAP connection of a server needs besides the server's row. */
export interface ImapConnectDeps {
  credentials: CredentialService;
  logger: Logger;
  proxies?: MailProxies | undefined;
  /** [public addresses only] MAILROOM_MAIL_ALLOW_PRIVATE: where a host a tenant chose may lead. */
  mailAddresses?: AddressPolicy | undefined;
}

const PUBLIC_ONLY = AddressPolicy.strict();

/**
 * The one place a server's row becomes an IMAP connection (the watcher, Test connection): its
 * proxy (a name the engine lacks fails here, naming it), its login (a fresh OAuth token when
 * `forceRefresh`), its CA file (one gone missing or bad fails here, naming the file), host, port
 * and TLS mode. A host a tenant chose is checked (and pinned to the checked address) against
 * MAILROOM_MAIL_ALLOW_PRIVATE first (`shared/mail-target.ts`). `extra` sets timeouts and IDLE behaviour.
 */
export async function connectImap(
  server: EmailServerRow,
  deps: ImapConnectDeps,
  extra: Partial<ImapSessionOptions> & { forceRefresh?: boolean } = {},
): Promise<ImapSession> {
  const { forceRefresh = false, ...sessionExtra } = extra;
  const proxy = proxyFor(server.proxy, deps.proxies);
  const target = await mailTarget(
    server.imapHost,
    server.hostsByTenant ? (deps.mailAddresses ?? PUBLIC_ONLY) : undefined,
    {
      viaProxy: proxy !== undefined,
    },
  );
  const login = await deps.credentials.imapLogin(server, { forceRefresh });
  const ca = server.imapCaFile === null ? undefined : await readCaFile(server.imapCaFile);
  return ImapSession.connect({
    host: target.host,
    ...(target.servername !== undefined && { servername: target.servername }),
    port: server.imapPort,
    tls: server.imapTls,
    login,
    ...(ca !== undefined && { ca }),
    logger: deps.logger,
    ...(proxy && { proxy }),
    ...sessionExtra,
  });
}
