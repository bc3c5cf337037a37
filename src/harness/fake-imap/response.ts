/**
 * Formatting of server response data: quoted strings, literals, flag lists and the IMAP
 * date-time (`"17-Jul-1996 02:44:25 -0700"`). A response is a list of parts, strings and
 * Buffers, so a literal's bytes go to the socket unchanged.
 */

export type ResponsePart = string | Buffer;

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

export function formatFlags(flags: Iterable<string>): string {
  return `(${[...flags].join(' ')})`;
}

/** A quoted string; the caller makes sure the value has no line breaks and no 8-bit bytes. */
export function quoted(value: string): string {
  return `"${value.replace(/[\\"]/g, (char) => `\\${char}`)}"`;
}

/** A literal: `{n}` CRLF and the bytes. */
export function literal(value: Buffer): ResponsePart[] {
  return [`{${value.length}}\r\n`, value];
}

/** A string as a quoted string when that can carry it, otherwise as a literal. */
export function imapString(value: string | Buffer): ResponsePart[] {
  const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  const text = bytes.toString('latin1');
  if (/^[\x20-\x7e]*$/.test(text) && bytes.length < 1024) {
    return [quoted(text)];
  }
  return literal(bytes);
}

/** NIL for a missing value, otherwise `imapString`. */
export function nstring(value: string | Buffer | undefined | null): ResponsePart[] {
  return value === undefined || value === null ? ['NIL'] : imapString(value);
}

/** A mailbox name on the wire: always quoted, which every client accepts. */
export function mailboxName(name: string): string {
  return quoted(name);
}

function twoDigits(value: number): string {
  return String(value).padStart(2, '0');
}

/** IMAP date-time in UTC, e.g. `"05-Mar-2025 09:04:01 +0000"`. */
export function formatDateTime(date: Date): string {
  const day = twoDigits(date.getUTCDate());
  const month = MONTHS[date.getUTCMonth()] ?? 'Jan';
  const time = [date.getUTCHours(), date.getUTCMinutes(), date.getUTCSeconds()].map(twoDigits).join(':');
  return `"${day}-${month}-${date.getUTCFullYear()} ${time} +0000"`;
}

const DATE_TIME = /^\s?(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})$/;

/** Parses an IMAP date-time (without the quotes); undefined when it is not one. */
export function parseDateTime(text: string): Date | undefined {
  const match = DATE_TIME.exec(text);
  if (!match) {
    return undefined;
  }
  const [, day, monthName, year, hours, minutes, seconds, sign, zoneHours, zoneMinutes] = match;
  const month = MONTHS.findIndex((name) => name.toLowerCase() === monthName?.toLowerCase());
  if (month < 0) {
    return undefined;
  }
  const utc = Date.UTC(Number(year), month, Number(day), Number(hours), Number(minutes), Number(seconds));
  const offset = (Number(zoneHours) * 60 + Number(zoneMinutes)) * 60_000 * (sign === '-' ? -1 : 1);
  return new Date(utc - offset);
}

const DATE = /^(\d{1,2})-([A-Za-z]{3})-(\d{4})$/;

/** Parses a SEARCH date (`1-Feb-1994`) as the start of that day in UTC. */
export function parseSearchDate(text: string): Date | undefined {
  const match = DATE.exec(text);
  if (!match) {
    return undefined;
  }
  const month = MONTHS.findIndex((name) => name.toLowerCase() === match[2]?.toLowerCase());
  return month < 0 ? undefined : new Date(Date.UTC(Number(match[3]), month, Number(match[1])));
}
