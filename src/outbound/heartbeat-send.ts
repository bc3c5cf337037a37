import type { CredentialService } from '../auth/credentials.js';
import type { Clock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import type { EmailServerRow } from '../store/rows.js';
import type { Store } from '../store/store.js';
import { HeartbeatDeferred } from './heartbeat.js';
import type { OutboundOptions } from './options.js';
import { RateLimitPlaces } from './rate-limit-places.js';
import { SmtpTransport, smtpTransportOptions } from './smtp-transport.js';
import { graphTransportFor, type MailTransport } from './graph-transport.js';

export interface HeartbeatSendDeps {
  store: Store;
  credentials: CredentialService;
  clock: Clock;
  logger: Logger;
  options: Pick<OutboundOptions, 'smtpTimeouts' | 'proxies' | 'mailAddresses'>;
}

/**
 * Sends heartbeats, each on a connection of its own. A heartbeat is a message the account sends:
 * it takes a place under the hourly rate limit, as any message does (and is skipped, with
 * {@link HeartbeatDeferred}, when the hour has none), and it is written into the send log.
 */
export class HeartbeatSender {
  private readonly places: RateLimitPlaces;

  constructor(private readonly deps: HeartbeatSendDeps) {
    this.places = new RateLimitPlaces(deps.store.sendLog);
  }

  /** Sends one heartbeat (`token` names its place in the send log); resolves with the server's reply. */
  async send(
    row: EmailServerRow,
    envelope: { from: string; to: string[] },
    raw: Buffer,
    token: string,
  ): Promise<string> {
    const { sendLog } = this.deps.store;
    const limit = row.smtpRateLimitPerHour;
    const now = this.deps.clock.now();
    if (limit > 0) {
      const allowedAt = await this.places.take(row.id, token, limit, now);
      if (allowedAt > now) {
        throw new HeartbeatDeferred(
          `heartbeat not sent: the hourly rate limit (${limit}) has no place before ${new Date(allowedAt).toISOString()}`,
        );
      }
    }
    const login = await this.deps.credentials.smtpLogin(row).catch(async (err: unknown) => {
      if (limit > 0) await this.places.release(token).catch(() => undefined);
      throw err;
    });
    const transport: MailTransport =
      row.protocol === 'graph'
        ? await graphTransportFor(row, login, this.deps.options).catch(async (err: unknown) => {
            if (limit > 0) await this.places.release(token).catch(() => undefined);
            throw err;
          })
        : new SmtpTransport(
            smtpTransportOptions(
              row,
              login,
              this.deps.options.smtpTimeouts,
              this.deps.options.proxies,
              this.deps.options.mailAddresses,
            ),
          );
    let response: string;
    try {
      response = (await transport.send(envelope, raw)).response;
    } catch (err) {
      if (limit > 0) {
        // A heartbeat that may have gone (cut off during or after DATA) counts as a send.
        // (Should the database fail here, the place counts for an hour and a quarter: fewer sends, never more.)
        await this.places.afterFailure(token, err, new Date(this.deps.clock.now())).catch(() => undefined);
      }
      throw err;
    } finally {
      transport.close();
    }
    const sentAt = new Date(this.deps.clock.now());
    // Without a limit it is logged all the same: it counts should a limit be set later.
    const logged = limit > 0 ? this.places.settle(token, sentAt) : sendLog.record(row.id, sentAt, token);
    await logged.catch((err: unknown) =>
      this.deps.logger.warn({ err, serverId: row.id }, 'could not write a heartbeat into the send log'),
    );
    return response;
  }
}
