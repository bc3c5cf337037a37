import { randomUUID } from 'node:crypto';
import type { Clock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import { HEARTBEAT_HEADER, ownMessageId } from '../shared/mail-headers.js';
import { heartbeatRoundTrip } from '../shared/metrics.js';
import type { EmailServerRow } from '../store/rows.js';
import { composeMessage } from './compose.js';

export type Health = 'ok' | 'degraded' | 'down' | 'unknown';

export interface HeartbeatStatus {
  health: Health;
  lastHeartbeatAt: string | null;
  lastResult: string | null;
  /** Time from sending to the heartbeat arriving in a watched mailbox, when it does. */
  roundTripMs: number | null;
}

/** Thrown by a heartbeat's `send` when the account's hourly rate limit has no place for it now. */
export class HeartbeatDeferred extends Error {}

/**
 * Who a heartbeat comes from: the account's own login (SMTP user, or the IMAP user for "use IMAP
 * settings") when it is an address, as servers such as Office 365 and Gmail let an account send
 * only as itself; else (no login: a relay) the heartbeat address.
 */
export function heartbeatSender(server: EmailServerRow, heartbeatAddress: string): string {
  const login =
    server.smtpAuthMode === 'custom' ? server.smtpUser : server.smtpAuthMode === 'imap' ? server.imapUser : null;
  return login && /^[^\s@]+@[^\s@]+$/.test(login) ? login : heartbeatAddress;
}

/**
 * Proves an account works: a small message with a unique token header to the heartbeat address.
 * The server's 250 makes the account `ok`; a refusal or no connection makes it `down`. When the
 * address is a mailbox Mailroom watches, inbound reports the token and the round trip is recorded.
 */
export class Heartbeat {
  private readonly pending = new Map<string, number>();
  private readonly state: HeartbeatStatus = {
    health: 'unknown',
    lastHeartbeatAt: null,
    lastResult: null,
    roundTripMs: null,
  };
  private timer: unknown;
  private stopped = false;

  constructor(
    private server: EmailServerRow,
    private readonly deps: {
      clock: Clock;
      logger: Logger;
      intervalMs: number;
      messageIdDomain: string | null;
      loopValue: string;
      /**
       * Sends a heartbeat (`token` names it, e.g. in the send log); resolves with the server's
       * reply, throws {@link HeartbeatDeferred} when the account's hourly rate limit has no place now.
       */
      send: (
        server: EmailServerRow,
        envelope: { from: string; to: string[] },
        raw: Buffer,
        token: string,
      ) => Promise<string>;
    },
  ) {}

  snapshot(): HeartbeatStatus {
    return { ...this.state };
  }

  update(server: EmailServerRow): void {
    this.server = server;
  }

  start(): void {
    if (this.deps.intervalMs <= 0) return;
    // beat() reports a failed send in the health; anything else it throws (composing the message)
    // is logged here, never left as an unhandled rejection, and the next beat still comes.
    const beatThenTick = (): void => {
      this.beat()
        .catch((err: unknown) =>
          this.deps.logger.error({ err, tenantId: this.server.tenantId, serverId: this.server.id }, 'heartbeat failed'),
        )
        .finally(() => {
          if (!this.stopped) tick();
        });
    };
    const tick = (): void => {
      this.timer = this.deps.clock.setTimeout(beatThenTick, this.deps.intervalMs);
    };
    beatThenTick();
  }

  stop(): void {
    this.stopped = true;
    this.deps.clock.clearTimeout(this.timer);
  }

  /** Sends one heartbeat now. */
  async beat(): Promise<Health> {
    const address = this.server.smtpHeartbeatAddress;
    if (!address) return this.state.health;
    const token = randomUUID();
    const from = heartbeatSender(this.server, address);
    const { raw, envelope } = await composeMessage({
      from: { name: 'Mailroom heartbeat', address: from },
      to: [address],
      cc: [],
      bcc: [],
      subject: `Mailroom heartbeat ${token}`,
      text: 'This message checks that the account can send mail. It is removed when it arrives.',
      attachments: [],
      messageId: ownMessageId(token, from, this.deps.messageIdDomain),
      date: new Date(this.deps.clock.now()),
      loopValue: this.deps.loopValue,
      extraHeaders: { [HEARTBEAT_HEADER]: token },
    });
    const sentAt = this.deps.clock.now();
    try {
      const reply = await this.deps.send(this.server, envelope, raw, token);
      this.state.lastHeartbeatAt = new Date(sentAt).toISOString();
      this.state.lastResult = reply;
      this.pending.set(token, sentAt);
      this.state.health = 'ok';
    } catch (err) {
      if (err instanceof HeartbeatDeferred) {
        // Not a failure: the account's hourly limit is used up; the health stays what it was.
        this.state.lastResult = err.message;
        this.deps.logger.info({ tenantId: this.server.tenantId, serverId: this.server.id }, err.message);
        return this.state.health;
      }
      this.state.lastHeartbeatAt = new Date(sentAt).toISOString();
      this.state.lastResult = (err as { response?: string; message?: string }).response ?? (err as Error).message;
      this.state.health = 'down';
      this.deps.logger.warn(
        {
          tenantId: this.server.tenantId,
          serverId: this.server.id,
          event: 'heartbeat-failed',
          reply: this.state.lastResult,
        },
        'heartbeat failed',
      );
    }
    return this.state.health;
  }

  /** Inbound saw our token arrive: records the round trip. */
  received(token: string, at: number): void {
    const sentAt = this.pending.get(token);
    if (sentAt === undefined) return;
    this.pending.delete(token);
    this.state.roundTripMs = Math.max(0, at - sentAt);
    heartbeatRoundTrip.set(
      { tenant_id: this.server.tenantId, server_id: this.server.id },
      this.state.roundTripMs / 1000,
    );
  }
}
