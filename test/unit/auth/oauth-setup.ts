import { randomBytes } from 'node:crypto';
import { createAccounts, type Accounts } from '../../../src/accounts/index.js';
import { AddressPolicy } from '../../../src/shared/address-policy.js'; // the test identity provider is on 127.0.0.1
import { OAuthService } from '../../../src/auth/oauth/index.js';
import { startFakeIdp, type FakeIdp } from '../../../src/harness/fake-idp/index.js';
import type { Logger } from '../../../src/shared/logger.js';
import { SecretSealer } from '../../../src/shared/sealed-secrets.js';
import type { EmailServerRow } from '../../../src/store/rows.js';
import type { Store } from '../../../src/store/store.js';
import { isPostgresReachable, resetStore, sharedStore } from '../../support/database.js';
import { capturingLogger } from '../../support/log-capture.js';
import { FakeClock } from './fake-clock.js';

export const CLIENT_SECRET = `canary-secret-${randomBytes(6).toString('hex')}`;
export const APP_CLIENT_ID = 'app-client-id';
export const DIRECTORY = 'contoso-directory';

/** A store, a fake identity provider, a fake clock and the OAuth service, for the auth unit tests. */
export interface OAuthFixture {
  store: Store;
  sealer: SecretSealer;
  accounts: Accounts;
  idp: FakeIdp;
  clock: FakeClock;
  logger: Logger;
  logLines: string[];
  oauth: OAuthService;
  tenantId: string;
  /** A fresh service over the same database (as after a restart). */
  restart(): OAuthService;
  /** Adds a server whose IMAP uses OAuth 2.0. */
  addServer(name: string, user: string, auth: Record<string, unknown>): Promise<EmailServerRow>;
  row(serverId: string): Promise<EmailServerRow>;
  close(): Promise<void>;
}

export async function openOAuthFixture(): Promise<OAuthFixture> {
  const store = await sharedStore((await isPostgresReachable()) ? 'postgres' : 'pglite');
  await resetStore(store);
  const idp = await startFakeIdp({ apps: [{ clientId: APP_CLIENT_ID, clientSecret: CLIENT_SECRET }] });
  const sealer = new SecretSealer(randomBytes(32));
  const { logger, lines } = capturingLogger('debug');
  const accounts = createAccounts(store, sealer, logger, { authorityAddresses: AddressPolicy.allowPrivate() });
  const clock = new FakeClock();
  const make = (): OAuthService => new OAuthService(store, sealer, logger, { identityProviderCa: idp.ca, clock });
  const oauth = make();
  const tenantId = (await accounts.tenants.create({ name: `OAuth ${randomBytes(3).toString('hex')}` })).id;
  const services: OAuthService[] = [oauth];
  const row = async (serverId: string): Promise<EmailServerRow> => {
    const found = await store.servers.get(tenantId, serverId);
    if (!found) throw new Error(`no server ${serverId}`);
    return found;
  };
  return {
    store,
    sealer,
    accounts,
    idp,
    clock,
    logger,
    logLines: lines,
    oauth,
    tenantId,
    restart() {
      const fresh = make();
      services.push(fresh);
      return fresh;
    },
    async addServer(name, user, auth) {
      const view = await accounts.servers.create(tenantId, {
        name,
        imap: {
          host: '127.0.0.1',
          port: 143,
          user,
          auth: { method: 'oauth2', directoryId: DIRECTORY, authorityHost: idp.url, ...auth },
        },
        smtp: { host: '127.0.0.1', port: 587, auth: { mode: 'imap' } },
      });
      return row(view.id);
    },
    row,
    async close() {
      for (const service of services) await service.stop();
      await idp.close();
    },
  };
}
