import { domainToASCII } from 'node:url';

/**
 * What the outbound side writes into the mail it sends and the inbound side recognises when that
 * mail comes back in: the contract between the two sides, kept here so that neither imports the
 * other.
 */

/** The header on every message Mailroom sends (value: the sending instance); seen coming back in, it means a mail loop. */
export const LOOP_HEADER = 'X-Mailroom-Loop';

/** The header carrying a heartbeat's token: written by the outbound heartbeat, recognised by inbound. */
export const HEARTBEAT_HEADER = 'X-Mailroom-Heartbeat';

/**
 * The domain Message-IDs had before they took the sending address's (issue 30), and the last resort
 * for an address whose domain cannot be written in one: mail naming it is a loop candidate.
 */
export const DEFAULT_MESSAGE_ID_DOMAIN = 'mailroom.invalid';

/** The local part's prefix of every Message-ID Mailroom writes: seen in mail coming in, it is a loop candidate. */
const OWN_ID_PREFIX = 'mailroom.';
const OWN_ID = /^<?mailroom\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}@/i;

/**
 * The Message-ID (without angle brackets) of a message Mailroom writes: `mailroom.<id>@<domain>`,
 * the domain that of the address it is sent from (what mail clients do, and what receiving filters
 * expect: a Message-ID of the sender's own domain), or `overrideDomain` (MAILROOM_MESSAGE_ID_DOMAIN)
 * when one is set.
 * @param id a UUID (the outgoing message's, or a heartbeat's token)
 */
export function ownMessageId(id: string, fromAddress: string, overrideDomain: string | null): string {
  return `${OWN_ID_PREFIX}${id}@${overrideDomain ?? messageIdDomainOf(fromAddress)}`;
}

/** Whether a Message-ID (with or without brackets) is one {@link ownMessageId} wrote, whatever its domain. */
export function isOwnMessageId(messageId: string | null | undefined): boolean {
  return typeof messageId === 'string' && OWN_ID.test(messageId.trim());
}

/** The address's domain as a Message-ID may hold it (ASCII, an IDN as punycode), lower case. */
function messageIdDomainOf(address: string): string {
  const at = address.lastIndexOf('@');
  const domain =
    at < 0
      ? ''
      : domainToASCII(
          address
            .slice(at + 1)
            .trim()
            .replace(/\.$/, ''),
        ).toLowerCase();
  // An address literal ([192.0.2.1]) or anything unusable: the domain of old, which is never a real one.
  return /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+$/.test(domain)
    ? domain
    : DEFAULT_MESSAGE_ID_DOMAIN;
}
