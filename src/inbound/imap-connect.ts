import type { CredentialService } from '../auth/credentials.js';
import { readCaFile } from '../shared/ca-file.js';
import type { Logger } from '../shared/logger.js';
import { proxyFor, type MailProxies } from '../shared/mail-proxies.js';
import type { EmailServerRow } from '../store/rows.js';
import { ImapSession, type ImapSessionOptions } from './imap-session.js';

/** What an IMAP connection of a server needs besides the server's row. */
export interface ImapConnectDeps {
  credentials: CredentialService;
  logger: Logger;
  proxies?: MailProxies | undefined;
}

/**
 * The one place a server's row becomes an IMAP connection (the watcher, Test connection): its
 * proxy (a name the engine lacks fails here, naming it), its login (a fresh OAuth token when
 * `forceRefresh`), its CA file (one gone missing or bad fails here, naming the file), host, port
 * and TLS mode. `extra` sets timeouts and IDLE behaviour.
 */
export async function connectImap(
  server: EmailServerRow,
  deps: ImapConnectDeps,
  extra: Partial<ImapSessionOptions> & { forceRefresh?: boolean } = {},
): Promise<ImapSession> {
  const { forceRefresh = false, ...sessionExtra } = extra;
  const proxy = proxyFor(server.proxy, deps.proxies);
  const login = await deps.credentials.imapLogin(server, { forceRefresh });
  const ca = server.imapCaFile === null ? undefined : await readCaFile(server.imapCaFile);
  return ImapSession.connect({
    host: server.imapHost,
    port: server.imapPort,
    tls: server.imapTls,
    login,
    ...(ca !== undefined && { ca }),
    logger: deps.logger,
    ...(proxy && { proxy }),
    ...sessionExtra,
  });
}
