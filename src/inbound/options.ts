import { DEFAULT_MESSAGE_ID_DOMAIN } from '../shared/mail-headers.js';
import type { AddressPolicy } from '../shared/address-policy.js';
import type { MailProxies } from '../shared/mail-proxies.js';
import { DEFAULT_CONNECT_LIMITS, type ConnectLimits } from './connect-gate.js';
import { DEFAULT_PARSE_LIMITS, type ParseLimits } from './message/parse.js';

/** Tunables of the inbound side; every one has a default that suits production. */
export interface InboundOptions {
  /** [['INBOX']] mailboxes watched on every server. */
  mailboxes: string[];
  /** [60000] ms between polls on servers without IDLE. */
  pollIntervalMs: number;
  /** [300000] ms between safety syncs while idling (also re-issues IDLE well inside 10 minutes). */
  safetyPollMs: number;
  /** [5000] ms between checks of the server list for added, changed or removed servers. */
  reconcileIntervalMs: number;
  /** [52428800] most bytes of message sources fetched in one batch. */
  batchMaxBytes: number;
  /**
   * [1000] most messages fetched in one batch (one transaction each: the commit's round trips and
   * fsync are paid per batch, so larger batches ingest a backlog faster; 1,000 ingested 10,000
   * small messages about 8 % faster than 500 in the benchmark).
   */
  batchMaxCount: number;
  /**
   * [268435456] most bytes of fetched message sources held at once by all the mailbox passes of
   * this engine together (256 MiB): a batch is fetched once its bytes fit. A single batch larger
   * than this (up to `batchMaxBytes`) is fetched alone.
   */
  fetchMemoryBytes: number;
  /** [1000, 300000] reconnect delay range after a connection error, ms. */
  reconnectMinMs: number;
  reconnectMaxMs: number;
  /** [60000, 1800000] reconnect delay range after a refused login, ms (no hammering of lockout policies). */
  authRetryMinMs: number;
  authRetryMaxMs: number;
  /** [300000] IMAP socket inactivity before the connection counts as dead, ms. */
  socketTimeoutMs: number;
  /** Parser bounds (size, header size, MIME depth, part count). */
  parseLimits: ParseLimits;
  /** ['mailroom.invalid'] domain of Message-IDs Mailroom generates; mail naming it is a loop candidate. */
  messageIdDomain: string;
  /** [32 in all, 8 per host] IMAP connection set-ups in progress at once. */
  connectLimits: ConnectLimits;
  /** [none] MAILROOM_MAIL_PROXY and MAILROOM_PROXIES: the HTTP proxies IMAP connections go through (each server's choice). */
  proxies?: MailProxies | undefined;
  /**
   * [public addresses only] MAILROOM_MAIL_ALLOW_PRIVATE: the addresses IMAP connections of a server
   * whose hosts a tenant's token chose (`hostsByTenant`) may reach; the operator's servers reach any.
   */
  mailAddresses?: AddressPolicy | undefined;
}

export const DEFAULT_INBOUND_OPTIONS: Readonly<InboundOptions> = Object.freeze({
  mailboxes: ['INBOX'],
  pollIntervalMs: 60_000,
  safetyPollMs: 300_000,
  reconcileIntervalMs: 5_000,
  batchMaxBytes: 50 * 1024 * 1024,
  batchMaxCount: 1000,
  fetchMemoryBytes: 256 * 1024 * 1024,
  reconnectMinMs: 1_000,
  reconnectMaxMs: 300_000,
  authRetryMinMs: 60_000,
  authRetryMaxMs: 1_800_000,
  socketTimeoutMs: 300_000,
  parseLimits: DEFAULT_PARSE_LIMITS,
  messageIdDomain: DEFAULT_MESSAGE_ID_DOMAIN,
  connectLimits: DEFAULT_CONNECT_LIMITS,
});
