/**
 * What the outbound side writes into the mail it sends and the inbound side recognises when that
 * mail comes back in: the contract between the two sides, kept here so that neither imports the
 * other.
 */

/** The header on every message Mailroom sends (value: the sending instance); seen coming back in, it means a mail loop. */
export const LOOP_HEADER = 'X-Mailroom-Loop';

/** The header carrying a heartbeat's token: written by the outbound heartbeat, recognised by inbound. */
export const HEARTBEAT_HEADER = 'X-Mailroom-Heartbeat';

/** ['mailroom.invalid'] domain of the Message-IDs Mailroom generates (MAILROOM_MESSAGE_ID_DOMAIN); mail naming it is a loop candidate. */
export const DEFAULT_MESSAGE_ID_DOMAIN = 'mailroom.invalid';
