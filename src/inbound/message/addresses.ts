import { domainToASCII } from 'node:url';

/** Longest address accepted, in characters (RFC 5321 path limit of 256 octets, with room for a display name). */
const MAX_INPUT_LENGTH = 998;
/** Longest domain accepted, in characters (RFC 1035). */
const MAX_DOMAIN_LENGTH = 253;
/** Characters never allowed unquoted in a local part (RFC 5322 specials and white space). */
const UNQUOTED_LOCAL = /^[^\s"(),:;<>@[\\\]]+$/u;
/** One label of an ASCII (punycode) domain, underscores tolerated as mail servers do. */
const ASCII_LABEL = /^[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?$/;

/** The parts of a parsed message that name recipients; `ParsedMessage` satisfies it. */
export interface RecipientSource {
  to: ReadonlyArray<{ address: string }>;
  cc: ReadonlyArray<{ address: string }>;
  /** Raw `Delivered-To` values, one per header. */
  deliveredTo: readonly string[];
  /** Raw `X-Original-To` values, one per header. */
  xOriginalTo: readonly string[];
}

/**
 * Parses one address, with or without a display name and angle brackets
 * (`"Doe, John" <John@Exämple.com>`, `<a@b>`, `a@b (comment)`), and returns it in the form
 * Mailroom compares: local part (NFC) and domain lower-cased, the domain as ASCII (IDN to punycode),
 * no trailing dot. Returns null when the input is not one parseable address.
 */
export function normalizeAddress(input: string): string | null {
  if (typeof input !== 'string' || input.length > MAX_INPUT_LENGTH) return null;
  const known = normalized.get(input);
  if (known !== undefined) return known;
  if (normalized.size >= NORMALIZED_CACHE_SIZE) normalized.clear();
  const result = normalizeUncached(input);
  normalized.set(input, result);
  return result;
}

/**
 * [4096] addresses whose normal form is remembered: the same few (a destination's address, its
 * domain's mail) come in every message, and IDN conversion is the costly part. Cleared when full.
 */
const NORMALIZED_CACHE_SIZE = 4096;
const normalized = new Map<string, string | null>();

function normalizeUncached(input: string): string | null {
  // NFC: a local part written with combining characters is the same mailbox as its composed form.
  const bare = extractAddrSpec(stripComments(input.normalize('NFC')).trim());
  if (bare === null) return null;
  const at = bare.lastIndexOf('@');
  if (at <= 0 || at === bare.length - 1) return null;
  const local = bare.slice(0, at);
  const domain = normalizeDomain(bare.slice(at + 1));
  if (domain === null || !isValidLocal(local)) return null;
  return `${local.toLowerCase()}@${domain}`;
}

/**
 * Every recipient of a message (To, Cc, Delivered-To, X-Original-To, then the envelope recipients
 * when the server exposes them), normalized with {@link normalizeAddress}, unparseable ones dropped,
 * each address once in order of first appearance.
 */
export function recipientAddresses(parsed: RecipientSource, envelopeRecipients: readonly string[] = []): string[] {
  const seen = new Set<string>();
  const candidates = [
    ...parsed.to.map((entry) => entry.address),
    ...parsed.cc.map((entry) => entry.address),
    ...parsed.deliveredTo.flatMap(splitAddressList),
    ...parsed.xOriginalTo.flatMap(splitAddressList),
    ...envelopeRecipients,
  ];
  for (const candidate of candidates) {
    const normalized = normalizeAddress(candidate);
    if (normalized !== null) seen.add(normalized);
  }
  return [...seen];
}

/**
 * The header in which a (normalized) address appears first: `to`, `cc`, `delivered-to`,
 * `x-original-to`, or `envelope` when only the envelope named it. For the trace's "routed because".
 */
export function headerNaming(parsed: RecipientSource, address: string): string {
  const same = (candidate: string): boolean => normalizeAddress(candidate) === address;
  if (parsed.to.some((e) => same(e.address))) return 'to';
  if (parsed.cc.some((e) => same(e.address))) return 'cc';
  if (parsed.deliveredTo.flatMap(splitAddressList).some(same)) return 'delivered-to';
  if (parsed.xOriginalTo.flatMap(splitAddressList).some(same)) return 'x-original-to';
  return 'envelope';
}

/** Splits a header value at commas that are outside quotes, comments and angle brackets. */
function splitAddressList(value: string): string[] {
  const items: string[] = [];
  let depth = 0;
  let quoted = false;
  let start = 0;
  for (let i = 0; i < value.length; i++) {
    const ch = value[i];
    if (ch === '\\' && quoted) i++;
    else if (ch === '"') quoted = !quoted;
    else if (!quoted && (ch === '(' || ch === '<')) depth++;
    else if (!quoted && (ch === ')' || ch === '>')) depth = Math.max(0, depth - 1);
    else if (!quoted && depth === 0 && ch === ',') {
      items.push(value.slice(start, i));
      start = i + 1;
    }
  }
  items.push(value.slice(start));
  return items.filter((item) => item.trim() !== '');
}

/** Removes `(comments)` outside quoted strings; nested comments included. */
function stripComments(value: string): string {
  let out = '';
  let depth = 0;
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const ch = value[i] as string;
    if (quoted) {
      out += ch;
      if (ch === '\\' && i + 1 < value.length) out += value[++i];
      else if (ch === '"') quoted = false;
    } else if (depth > 0) {
      if (ch === '\\') i++;
      else if (ch === '(') depth++;
      else if (ch === ')') depth--;
    } else if (ch === '(') depth++;
    else {
      if (ch === '"') quoted = true;
      out += ch;
    }
  }
  return depth === 0 && !quoted ? out : '';
}

/** The addr-spec of `Name <addr>` (last angle brackets outside quotes) or of a bare address. */
function extractAddrSpec(value: string): string | null {
  if (value === '') return null;
  let open = -1;
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const ch = value[i];
    if (ch === '\\' && quoted) i++;
    else if (ch === '"') quoted = !quoted;
    else if (!quoted && ch === '<') open = i;
  }
  if (open === -1) return /\s/u.test(value.replace(/"(?:[^"\\]|\\.)*"/gu, '')) ? null : value;
  const close = value.indexOf('>', open);
  if (close === -1 || value.slice(close + 1).trim() !== '') return null;
  let spec = value.slice(open + 1, close).trim();
  // Obsolete source route: <@relay1,@relay2:user@example.com>.
  if (spec.startsWith('@')) spec = spec.slice(spec.indexOf(':') + 1);
  return spec === '' ? null : spec;
}

function isValidLocal(local: string): boolean {
  if (local.startsWith('"') && local.endsWith('"') && local.length >= 2) return true;
  if (!UNQUOTED_LOCAL.test(local)) return false;
  return !local.startsWith('.') && !local.endsWith('.') && !local.includes('..');
}

function normalizeDomain(domain: string): string | null {
  if (domain.startsWith('[') && domain.endsWith(']'))
    return /^\[[\w.:-]+\]$/u.test(domain) ? domain.toLowerCase() : null;
  const trimmed = domain.endsWith('.') ? domain.slice(0, -1) : domain;
  if (trimmed === '' || /\s/u.test(trimmed)) return null;
  const ascii = domainToASCII(trimmed.toLowerCase());
  if (ascii === '' || ascii.length > MAX_DOMAIN_LENGTH) return null;
  return ascii.split('.').every((label) => label.length <= 63 && ASCII_LABEL.test(label)) ? ascii : null;
}
