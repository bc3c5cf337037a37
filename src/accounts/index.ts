import { AddressPolicy } from '../shared/address-policy.js';
import type { Logger } from '../shared/logger.js';
import type { MailProxies } from '../shared/mail-proxies.js';
import type { SecretSealer } from '../shared/sealed-secrets.js';
import type { Store } from '../store/store.js';
import { ApiTokenService } from './api-token-service.js';
import { AuditService } from './audit-service.js';
import { DestinationService } from './destination-service.js';
import { ServerService } from './server-service.js';
import { TenantService } from './tenant-service.js';

export { CONFIGURED_ADMIN_NAME, type Principal } from './api-token-service.js';

/** The administrator's model: tenants, their e-mail servers and destinations, API tokens. */
export interface Accounts {
  tenants: TenantService;
  servers: ServerService;
  destinations: DestinationService;
  apiTokens: ApiTokenService;
  /** Who changed what (reading; each service writes its own entries). */
  audit: AuditService;
}

/** @param options.proxies the engine's mail proxies, which e-mail servers choose from */
export function createAccounts(
  store: Store,
  sealer: SecretSealer,
  logger: Logger,
  options: {
    proxies?: MailProxies | undefined;
    /** [public addresses only] where webhook URLs may lead (MAILROOM_WEBHOOK_ALLOW_PRIVATE). */
    webhookAddresses?: AddressPolicy | undefined;
    /** [public addresses only] where an OAuth 2.0 `authorityHost` may lead (MAILROOM_OAUTH_ALLOW_PRIVATE). */
    authorityAddresses?: AddressPolicy | undefined;
    /** [public addresses only] where IMAP and SMTP hosts a tenant's token sets may lead (MAILROOM_MAIL_ALLOW_PRIVATE). */
    mailAddresses?: AddressPolicy | undefined;
    /** [none: no CA file accepted] the directory `imap.caFile` and `smtp.caFile` must name a file in (MAILROOM_CA_DIR). */
    caDir?: string | undefined;
  } = {},
): Accounts {
  return {
    tenants: new TenantService(store, logger),
    servers: new ServerService(
      store,
      sealer,
      logger,
      options.proxies,
      options.caDir,
      options.authorityAddresses ?? AddressPolicy.strict(),
      options.mailAddresses ?? AddressPolicy.strict(),
    ),
    destinations: new DestinationService(store, logger, sealer, {
      addresses: options.webhookAddresses ?? AddressPolicy.strict(),
    }),
    apiTokens: new ApiTokenService(store, logger),
    audit: new AuditService(store),
  };
}
