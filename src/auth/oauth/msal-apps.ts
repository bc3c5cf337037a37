import {
  ConfidentialClientApplication,
  LogLevel,
  PublicClientApplication,
  type ICachePlugin,
  type INetworkModule,
} from '@azure/msal-node';
import type { Logger } from '../../shared/logger.js';
import type { OAuthSettings } from '../../store/rows.js';
import { RefreshGate } from './refresh-gate.js';
import { authorityOf } from './settings.js';

/**
 * Builds msal-node applications for a server's OAuth settings. The authority is the directory's
 * own (`<authority host>/<directory id>`), and its host is a known authority: no instance
 * discovery, so custom and sovereign clouds and a local identity provider work alike.
 */
export class MsalApps {
  constructor(
    /** The HTTP client of every request to an identity provider (its CA and proxy); also the service-account grant's. */
    readonly network: INetworkModule,
    private readonly logger: Logger,
  ) {}

  private auth(settings: OAuthSettings) {
    return {
      clientId: settings.clientId,
      authority: authorityOf(settings),
      knownAuthorities: [new URL(settings.authorityHost).host],
    };
  }

  private system(network: INetworkModule) {
    const log = this.logger.child({ component: 'msal' });
    return {
      networkClient: network,
      loggerOptions: {
        piiLoggingEnabled: false,
        logLevel: LogLevel.Warning,
        loggerCallback: (level: LogLevel, message: string, containsPii: boolean) => {
          if (containsPii) return;
          if (level === LogLevel.Error) log.error({ msal: message }, 'msal error');
          else if (level === LogLevel.Warning) log.warn({ msal: message }, 'msal warning');
        },
      },
    };
  }

  /**
   * A public client (device code, refresh), with its token cache in `cachePlugin`, or without
   * one when the caller loads and saves the cache itself.
   */
  publicApp(settings: OAuthSettings, cachePlugin?: ICachePlugin, network: INetworkModule = this.network) {
    return new PublicClientApplication({
      auth: this.auth(settings),
      ...(cachePlugin && { cache: { cachePlugin } }),
      system: this.system(network),
    });
  }

  /**
   * A public client for an existing grant, without a cache plugin (the caller loads and saves the
   * cache), whose refreshes pass only while `gate.refreshAllowed` is set.
   */
  gatedPublicApp(settings: OAuthSettings): { app: PublicClientApplication; gate: RefreshGate } {
    const gate = new RefreshGate(this.network);
    return { app: this.publicApp(settings, undefined, gate), gate };
  }

  /** A confidential client (client credentials) holding the opened client secret in memory only. */
  confidentialApp(settings: OAuthSettings, clientSecret: string) {
    return new ConfidentialClientApplication({
      auth: { ...this.auth(settings), clientSecret },
      system: this.system(this.network),
    });
  }
}
