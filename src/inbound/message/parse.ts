/**
 * Parsing a raw message with mailparser, within limits. Runs inside the parse worker
 * (`parse-worker.ts`); the main thread goes through `ParsePool`, which loads this module itself
 * only to parse small messages in place.
 */
import { createHash } from 'node:crypto';
import { simpleParser, type AddressObject, type ParsedMail, type SimpleParserOptions } from 'mailparser';
import { scanMime } from './mime-scan.js';
import {
  DEFAULT_PARSE_LIMITS,
  MAX_MESSAGE_ID_BYTES,
  ParseFailedError,
  SELECTED_HEADERS,
  errorText,
  isStorableDate,
  type ExtractedAttachment,
  type ParseFailure,
  type ParseLimits,
  type ParseResult,
  type ParsedAddress,
  type ParsedMessage,
} from './parsed-message.js';

export * from './parsed-message.js';

/** Checks size and MIME structure without parsing; on success gives the top-level header length. */
export function checkLimits(raw: Buffer, limits: ParseLimits): ParseFailure | { ok: true; headerBytes: number } {
  if (raw.length > limits.maxBytes) {
    return { ok: false, reason: 'too-large', detail: `${raw.length} bytes exceeds the limit of ${limits.maxBytes}` };
  }
  const scan = scanMime(raw, limits);
  return scan.ok ? { ok: true, headerBytes: scan.headerBytes } : scan;
}

/**
 * Parses one raw RFC 822 message within `limits`. Never throws: every failure is a
 * {@link ParseFailure}. CPU-bound; run it in a worker thread (see `ParsePool`), not on the main loop.
 */
export async function parseMessage(raw: Buffer, limits: ParseLimits = DEFAULT_PARSE_LIMITS): Promise<ParseResult> {
  try {
    const checked = checkLimits(raw, limits);
    if (!checked.ok) return checked;
    const mail = await simpleParser(raw, parserOptions(limits));
    return { ok: true, message: toParsedMessage(mail, raw, checked.headerBytes) };
  } catch (err) {
    return { ok: false, reason: 'parse-error', detail: errorText(err) };
  }
}

/**
 * The decoded content of attachment `index` (as numbered in {@link ParsedMessage.attachments}),
 * or null when there is none. Throws {@link ParseFailedError} when the message cannot be parsed.
 */
export async function extractAttachment(
  raw: Buffer,
  index: number,
  limits: ParseLimits = DEFAULT_PARSE_LIMITS,
): Promise<ExtractedAttachment | null> {
  const checked = checkLimits(raw, limits);
  if (!checked.ok) throw new ParseFailedError(checked);
  let mail: ParsedMail;
  try {
    mail = await simpleParser(raw, parserOptions(limits));
  } catch (err) {
    throw new ParseFailedError({ ok: false, reason: 'parse-error', detail: errorText(err) });
  }
  const attachment = Number.isInteger(index) && index >= 0 ? mail.attachments[index] : undefined;
  if (!attachment) return null;
  return { filename: attachment.filename ?? null, contentType: attachment.contentType, content: attachment.content };
}

/**
 * Keep `cid:` links (attachments are served separately); checksums are computed here, as SHA-256;
 * no `textAsHtml` (Mailroom never uses it, and linkifying every text body is a good part of
 * mailparser's time on small messages).
 */
function parserOptions(limits: ParseLimits): SimpleParserOptions {
  return {
    keepCidLinks: true,
    checksumAlgo: false,
    maxHtmlLengthToParse: limits.maxHtmlToTextChars,
    skipTextToHtml: true,
  };
}

function toParsedMessage(mail: ParsedMail, raw: Buffer, headerBytes: number): ParsedMessage {
  const lines = headerValues(mail);
  const headers: Record<string, string> = {};
  for (const name of SELECTED_HEADERS) {
    const value = lines.get(name)?.[0];
    if (value !== undefined) headers[name] = value;
  }
  const dateHeader = lines.get('date')?.[0];
  // mailparser substitutes the current time for an unreadable Date; report that as no date, and a
  // date the database cannot store (year 10000) too.
  const readable = dateHeader !== undefined && !Number.isNaN(Date.parse(dateHeader));
  const date = readable && mail.date instanceof Date && isStorableDate(mail.date) ? mail.date : null;
  const messageId = messageIds(mail.messageId)[0] ?? null;
  const headerHash =
    messageId === null
      ? createHash('sha256').update(raw.subarray(0, headerBytes)).update(`\0${raw.length}`).digest('hex')
      : null;
  return {
    messageId,
    subject: mail.subject ?? '',
    from: addresses(mail.from)[0] ?? null,
    replyTo: addresses(mail.replyTo),
    to: addresses(mail.to),
    cc: addresses(mail.cc),
    deliveredTo: lines.get('delivered-to') ?? [],
    xOriginalTo: lines.get('x-original-to') ?? [],
    date: date === null ? null : date.toISOString(),
    inReplyTo: messageIds(mail.inReplyTo)[0] ?? null,
    references: messageIds(mail.references),
    text: typeof mail.text === 'string' ? mail.text : null,
    html: typeof mail.html === 'string' ? mail.html : null,
    attachments: mail.attachments.map((attachment, index) => ({
      index,
      filename: attachment.filename ?? null,
      contentType: attachment.contentType,
      size: attachment.content.length,
      contentId: attachment.cid ?? attachment.contentId?.replace(/^<|>$/g, '') ?? null,
      checksum: createHash('sha256').update(attachment.content).digest('hex'),
      inline: attachment.contentDisposition === 'inline' || attachment.related === true,
    })),
    headers,
    headerHash,
  };
}

/** Unfolded, trimmed raw values of every top-level header, by lower-case name, in order. */
function headerValues(mail: ParsedMail): Map<string, string[]> {
  const values = new Map<string, string[]>();
  for (const { key, line } of mail.headerLines ?? []) {
    const colon = line.indexOf(':');
    const rest = line.slice(colon + 1);
    const value = (rest.includes('\n') ? rest.replace(/\r?\n(?=[ \t])/g, '') : rest).trim();
    const list = values.get(key);
    if (list) list.push(value);
    else values.set(key, [value]);
  }
  return values;
}

function addresses(header: AddressObject | AddressObject[] | undefined): ParsedAddress[] {
  const objects = header === undefined ? [] : Array.isArray(header) ? header : [header];
  const out: ParsedAddress[] = [];
  for (const object of objects) collectAddresses(object.value, out);
  return out;
}

/** Appends the addresses of `entries` to `out`, those of groups included (no closure per call: hot path). */
function collectAddresses(entries: AddressObject['value'], out: ParsedAddress[]): void {
  for (const entry of entries) {
    if (entry.group) collectAddresses(entry.group, out);
    else if (entry.address) out.push({ address: entry.address, name: entry.name ?? '' });
  }
}

/**
 * Message-IDs in a header value, without angle brackets; a bare value counts as one. One over
 * {@link MAX_MESSAGE_ID_BYTES} is no Message-ID (and could not be indexed): it is left out.
 */
function messageIds(value: string | string[] | undefined): string[] {
  const text = (Array.isArray(value) ? value.join(' ') : (value ?? '')).trim();
  if (text === '') return [];
  const bracketed = [...text.matchAll(/<([^<>\s]+)>/g)].map((match) => match[1] as string);
  const ids = bracketed.length > 0 ? bracketed : text.split(/[\s,]+/).filter((id) => id !== '');
  return ids.filter((id) => Buffer.byteLength(id) <= MAX_MESSAGE_ID_BYTES);
}
