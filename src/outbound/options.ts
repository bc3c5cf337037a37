import type { AddressPolicy } from '../shared/address-policy.js';
import type { MailProxies } from '../shared/mail-proxies.js';

/** SMTP client time budgets, ms; each unset one keeps the transport's default. */
export interface SmtpTimeouts {
  /** [30000] connect budget, ms. */
  connectionMs?: number;
  /** [30000] wait for the greeting, ms. */
  greetingMs?: number;
  /** [120000] socket inactivity during a transaction, ms. */
  socketMs?: number;
}

/** Tunables of the outbound side. */
export interface OutboundOptions {
  /** [30000] while the relay is unreachable, how often it is probed, ms (the reference: every 30 s). */
  probeIntervalMs: number;
  /** [300000] after refused credentials, how long the account's queue is held before trying again, ms. */
  authRetryMs: number;
  /** [432000000] a message still failing with 4xx after this long (5 days) is dead-lettered, ms. */
  maxLifetimeMs: number;
  /** [14400000] a message still undelivered after this long (4 h) raises a warning event, ms. */
  warnAfterMs: number;
  /** [900000] heartbeat period per account with a heartbeat address, ms (0 = off). */
  heartbeatIntervalMs: number;
  /** [10485760] largest sum of attachment bytes accepted by the send API. */
  maxAttachmentBytes: number;
  /** [null: the sending address's domain] MAILROOM_MESSAGE_ID_DOMAIN: the domain of every Message-ID written. */
  messageIdDomain: string | null;
  /** [true] fsync spool files (off only for throwaway test spools). */
  fsync: boolean;
  /** [{}] SMTP client timeouts (the transport's defaults: 30 s connect, 30 s greeting, 120 s socket). */
  smtpTimeouts: SmtpTimeouts;
  /** [none] MAILROOM_MAIL_PROXY and MAILROOM_PROXIES: the HTTP proxies SMTP connections go through (each server's choice). */
  proxies?: MailProxies | undefined;
  /**
   * [public addresses only] MAILROOM_MAIL_ALLOW_PRIVATE: the addresses SMTP connections of a server
   * whose hosts a tenant's token chose (`hostsByTenant`) may reach; the operator's servers reach any.
   */
  mailAddresses?: AddressPolicy | undefined;
}

export const DEFAULT_OUTBOUND_OPTIONS: Readonly<OutboundOptions> = Object.freeze({
  probeIntervalMs: 30_000,
  authRetryMs: 300_000,
  maxLifetimeMs: 5 * 24 * 3600_000,
  warnAfterMs: 4 * 3600_000,
  heartbeatIntervalMs: 900_000,
  maxAttachmentBytes: 10 * 1024 * 1024,
  messageIdDomain: null,
  fsync: true,
  smtpTimeouts: Object.freeze({}),
});
