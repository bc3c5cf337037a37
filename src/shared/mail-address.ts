import { domainToASCII, domainToUnicode } from 'node:url';

/**
 * International e-mail addresses (RFC 6530–6532: a UTF-8 local part, a domain in Unicode or as
 * its punycode A-labels, RFC 5890/5891), in the one form Mailroom stores them.
 *
 * The stored form is the local part in Unicode NFC, as written (case kept: a local part belongs
 * to its server, RFC 5321 §2.4), `@`, the domain in Unicode: UTS-46 mapped through its A-label
 * form and back, so `Bücher.Example` and `xn--bcher-kva.example` are both stored as
 * `bücher.example`. Unicode rather than punycode because that is what administrators and
 * customers read (the console, the From header), what an SMTPUTF8 server is given as it is, and
 * because the way to punycode is lossless and always available when a server has no SMTPUTF8
 * ({@link asciiDomainAddress}), whereas punycode stored would show `xn--…` everywhere.
 *
 * Addresses are compared by {@link mailAddressKey}: the local part NFC and lower-cased, the domain
 * as A-labels (what inbound routing compares, `inbound/message/addresses.ts`).
 */

/** Longest address accepted, in characters (RFC 5321 §4.5.3.1.3: a path of 256 octets). */
const MAX_ADDRESS_LENGTH = 320;
/** Longest local part, in characters (RFC 5321 §4.5.3.1.1: 64 octets; RFC 6531 keeps the limit in octets). */
const MAX_LOCAL_OCTETS = 64;
/** Longest domain in A-labels, in characters (RFC 1035). */
const MAX_DOMAIN_LENGTH = 253;
/**
 * A dot-atom local part (RFC 5322 §3.4.1) with RFC 6531 §3.3's UTF8-non-ascii in atext. C1
 * controls and the Unicode line/paragraph separators are kept out.
 */
const LOCAL_PART =
  /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\u00a0-\u2027\u202a-\u{10ffff}]+(?:\.[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\u00a0-\u2027\u202a-\u{10ffff}]+)*$/u;
/** One A-label (LDH, RFC 1123 §2.1; underscores tolerated as mail servers do). */
const ASCII_LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;
/** Any character outside US-ASCII. */
const NON_ASCII = /[\u0080-\u{10ffff}]/u;

/** A parsed address in its stored form. */
export interface MailAddress {
  /** Local part, NFC, case as written. */
  local: string;
  /** Domain in Unicode (U-labels), lower-cased by UTS-46. */
  domain: string;
  /** Domain as A-labels (punycode), lower-case. */
  asciiDomain: string;
}

/**
 * Parses a bare addr-spec (`info@bücher.example`, no display name or brackets) into its stored
 * form, or null when it is not one: a dot-atom local part (Unicode allowed) and a domain of at
 * least two labels that has an A-label form.
 */
export function parseMailAddress(value: string): MailAddress | null {
  if (typeof value !== 'string' || value.length > MAX_ADDRESS_LENGTH) return null;
  const text = value.normalize('NFC');
  const at = text.lastIndexOf('@');
  if (at <= 0 || at === text.length - 1) return null;
  const local = text.slice(0, at);
  if (!LOCAL_PART.test(local) || Buffer.byteLength(local) > MAX_LOCAL_OCTETS) return null;
  const asciiDomain = asciiDomainOf(text.slice(at + 1));
  if (asciiDomain === null) return null;
  return { local, domain: domainToUnicode(asciiDomain).normalize('NFC'), asciiDomain };
}

/** Whether `value` is an address Mailroom accepts (the `mail-address` format of the schemas). */
export function isMailAddress(value: string): boolean {
  return parseMailAddress(value) !== null;
}

/** The stored form of an address (see the module's comment), or null when it is none. */
export function canonicalMailAddress(value: string): string | null {
  const parsed = parseMailAddress(value);
  return parsed && `${parsed.local}@${parsed.domain}`;
}

/** The comparison key: local part NFC lower-cased, domain as A-labels; null when no address. */
export function mailAddressKey(value: string): string | null {
  const parsed = parseMailAddress(value);
  return parsed && `${parsed.local.toLowerCase()}@${parsed.asciiDomain}`;
}

/**
 * The address with its domain as A-labels, as an SMTP server without SMTPUTF8 takes it
 * (RFC 5890 §2.3.2.1); the local part is left as it is (see {@link needsSmtpUtf8}). An input that
 * is no address is returned unchanged, for the server to judge.
 */
export function asciiDomainAddress(value: string): string {
  const parsed = parseMailAddress(value);
  return parsed ? `${parsed.local}@${parsed.asciiDomain}` : value;
}

/**
 * Whether the address can only travel with SMTPUTF8 (RFC 6531): its local part has characters
 * outside ASCII, for which there is no ASCII form (punycode is for domains only).
 */
export function needsSmtpUtf8(value: string): boolean {
  const at = value.lastIndexOf('@');
  return NON_ASCII.test(at === -1 ? value : value.slice(0, at));
}

/** The A-label form of a domain (UTS-46 mapped, no trailing dot), or null when it has none. */
function asciiDomainOf(domain: string): string | null {
  if (domain === '' || /[\s@]/u.test(domain)) return null;
  const ascii = domainToASCII(domain);
  if (ascii === '' || ascii.length > MAX_DOMAIN_LENGTH) return null;
  const labels = ascii.split('.');
  return labels.length >= 2 && labels.every((label) => ASCII_LABEL.test(label)) ? ascii : null;
}
