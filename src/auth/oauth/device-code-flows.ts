import type { INetworkModule } from '@azure/msal-node';
import type { Clock } from '../../shared/clock.js';
import { MailroomError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import type { OAuthPurpose, OAuthStatus } from '../../store/oauth-grants.js';
import { DeviceCodePolling } from './device-code-polling.js';
import { describeOAuthError } from './describe-error.js';
import type { GrantKey, OAuthGrants } from './grants.js';
import type { MsalApps } from './msal-apps.js';
import { SealedCachePlugin } from './sealed-cache-plugin.js';
import { deviceCodeScopes, type OAuthTarget } from './settings.js';

/** What the administrator is shown after pressing "Get Code". */
export interface DeviceCodeStart {
  purpose: OAuthPurpose;
  userCode: string;
  verificationUri: string;
  /** Seconds the code can be used for. */
  expiresIn: number;
  message: string;
}

/** A sign-in of this engine instance, live or just ended. */
export interface FlowSnapshot {
  status: Extract<OAuthStatus, 'PENDING' | 'COMPLETE' | 'EXPIRED' | 'ERROR'>;
  expiresAt: Date | null;
  error: string | null;
}

export interface DeviceCodeFlowsDeps {
  apps: MsalApps;
  grants: OAuthGrants;
  network: INetworkModule;
  clock: Clock;
  logger: Logger;
  /** [900] longest a code is polled for, seconds (the reference's "expires in 900 seconds"). */
  lifetimeSeconds?: number;
  /** Told after a sign-in completed and its grant was stored (e.g. to resume a held queue at once). */
  onSignedIn?: (key: GrantKey, account: string | null) => void;
}

interface Flow {
  abort: AbortController;
  snapshot: FlowSnapshot;
  polling: DeviceCodePolling;
  done: Promise<void>;
}

/**
 * Device-code sign-ins: one per server and purpose at a time (a new request cancels the old).
 * The flow runs in the engine: it polls the provider, and on success the new token cache
 * replaces the stored one and the grant becomes COMPLETE.
 */
export class DeviceCodeFlows {
  private readonly flows = new Map<string, Flow>();

  constructor(private readonly deps: DeviceCodeFlowsDeps) {}

  /** The latest flow of this instance for a grant, if any. */
  snapshot(serverId: string, purpose: OAuthPurpose): FlowSnapshot | undefined {
    const flow = this.flows.get(`${serverId}|${purpose}`);
    return flow ? { ...flow.snapshot } : undefined;
  }

  /** Waits until the current flow of a grant has ended (tests, CLI). */
  async settled(serverId: string, purpose: OAuthPurpose): Promise<FlowSnapshot | undefined> {
    await this.flows.get(`${serverId}|${purpose}`)?.done;
    return this.snapshot(serverId, purpose);
  }

  /** Requests a device code; resolves once the provider issued it, while polling goes on. */
  start(key: GrantKey, target: OAuthTarget): Promise<DeviceCodeStart> {
    const id = `${key.serverId}|${key.purpose}`;
    this.flows.get(id)?.abort.abort();
    const log = this.deps.logger.child({
      tenantId: key.tenantId,
      serverId: key.serverId,
      ...(key.serverName !== undefined && { serverName: key.serverName }),
      purpose: key.purpose,
      component: 'oauth',
    });
    const abort = new AbortController();
    const snapshot: FlowSnapshot = { status: 'PENDING', expiresAt: null, error: null };
    const polling = new DeviceCodePolling(this.deps.network, {
      clock: this.deps.clock,
      signal: abort.signal,
      maxLifetimeMs: (this.deps.lifetimeSeconds ?? 900) * 1000,
    });
    const app = this.deps.apps.publicApp(target.settings, new SealedCachePlugin(this.deps.grants, key), polling);

    return new Promise<DeviceCodeStart>((resolve, reject) => {
      let issued = false;
      // Cancelled (a new Get Code, the server changed or deleted, the engine stopping) before the
      // provider issued a code: the request that asked for one is answered, not left hanging.
      const endedBeforeCode = (): void => {
        if (!issued) {
          reject(
            new MailroomError(
              'CONFLICT',
              'the sign-in was cancelled before the identity provider issued a code (another Get Code, ' +
                'a change of the server, or the engine stopping); ask for a code again',
            ),
          );
        }
      };
      const done = app
        .acquireTokenByDeviceCode({
          scopes: deviceCodeScopes(target),
          deviceCodeCallback: (answer) => {
            if (abort.signal.aborted) return; // a code for a sign-in already given up: never shown
            issued = true;
            snapshot.expiresAt = new Date(polling.expiresAtMs);
            log.info({ expiresIn: answer.expiresIn }, 'device code issued; waiting for the sign-in');
            resolve({
              purpose: key.purpose,
              userCode: answer.userCode,
              verificationUri: answer.verificationUri,
              expiresIn: Math.round((polling.expiresAtMs - this.deps.clock.now()) / 1000),
              message: answer.message,
            });
          },
        })
        .then(
          async (result) => {
            if (abort.signal.aborted) return endedBeforeCode();
            const account = result?.account?.username ?? null;
            snapshot.status = 'COMPLETE';
            await this.deps.grants.setStatus(key, {
              status: 'COMPLETE',
              account,
              error: mismatch(account, target.user),
              expiresAt: result?.expiresOn ?? null,
            });
            log.info({ account }, 'OAuth 2.0 sign-in complete');
            this.deps.onSignedIn?.(key, account);
          },
          async (err: unknown) => {
            if (abort.signal.aborted) return endedBeforeCode();
            const failure = describeOAuthError(err);
            snapshot.status = failure.status === 'EXPIRED' ? 'EXPIRED' : 'ERROR';
            snapshot.error = failure.message;
            if (!issued) {
              reject(err);
              return;
            }
            log.warn({ code: failure.code, error: failure.message }, 'OAuth 2.0 sign-in failed');
            const stored = await this.deps.grants.get(key.serverId, key.purpose);
            // A working earlier grant stays in force; the failed attempt shows in this instance's status.
            if (stored?.status !== 'COMPLETE' || stored.appKey !== key.appKey) {
              await this.deps.grants.setStatus(key, { status: snapshot.status, error: failure.message });
            }
          },
        )
        .catch((err: unknown) => log.error({ err }, 'recording the sign-in result failed'));
      this.flows.set(id, { abort, snapshot, polling, done });
    });
  }

  /**
   * Cancels the flows of a server's purposes (its sign-in was voided, or it was deleted): polling
   * stops and nothing is saved. Resolves once they ended.
   */
  async cancel(serverId: string, purposes: readonly OAuthPurpose[]): Promise<void> {
    const ended: Array<Promise<void>> = [];
    for (const purpose of purposes) {
      const id = `${serverId}|${purpose}`;
      const flow = this.flows.get(id);
      if (!flow) continue;
      flow.abort.abort(); // synchronous: no answer arriving from now on is saved
      this.flows.delete(id); // and its status no longer shows as this instance's
      ended.push(flow.done);
    }
    await Promise.all(ended);
  }

  /** Cancels every live flow (engine stop). */
  async stop(): Promise<void> {
    const flows = [...this.flows.values()];
    for (const flow of flows) flow.abort.abort();
    await Promise.all(flows.map((f) => f.done));
  }
}

/** A note when the person signed in as someone else than the configured mailbox user. */
export function mismatch(account: string | null, user: string): string | null {
  if (account === null || account.toLowerCase() === user.toLowerCase()) return null;
  return `signed in as ${account}, but the configured user name is ${user}: the mailbox will refuse the token unless ${account} may open it`;
}
