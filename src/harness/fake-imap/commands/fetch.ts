/**
 * FETCH and UID FETCH: UID, FLAGS, RFC822.SIZE, INTERNALDATE, ENVELOPE, the ALL and FAST
 * macros, and body sections ([], HEADER, TEXT, HEADER.FIELDS (...), HEADER.FIELDS.NOT (...), and
 * 1 for a single-part message) with optional <partial>, as BODY, BODY.PEEK, BINARY(.PEEK) or the
 * RFC822 forms; in Gmail mode also X-GM-MSGID and X-GM-THRID. BODYSTRUCTURE is not implemented.
 */
import { envelope, selectHeaderFields, splitMessage } from '../message-parts.js';
import { argText, type ImapArg } from '../parser.js';
import { formatDateTime, formatFlags, literal, type ResponsePart } from '../response.js';
import { parseSequenceSet } from '../sequence-set.js';
import type { StoredMessage } from '../store.js';
import { bad, ok, SELECTED, type CommandSpec } from './context.js';

type Section =
  { part: 'full' } | { part: 'header' } | { part: 'text' } | { part: 'fields'; names: string[]; exclude: boolean };

type FetchItem =
  | { kind: 'UID' | 'FLAGS' | 'RFC822.SIZE' | 'INTERNALDATE' | 'ENVELOPE' | 'X-GM-MSGID' | 'X-GM-THRID' }
  | { kind: 'section'; label: string; section: Section; peek: boolean; start?: number; length?: number };

const MACROS: Record<string, string[]> = {
  FAST: ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE'],
  ALL: ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE'],
};

const SIMPLE_ITEMS = new Set(['UID', 'FLAGS', 'RFC822.SIZE', 'INTERNALDATE', 'ENVELOPE']);

/**
 * Gmail's FETCH items, in Gmail mode: X-GM-MSGID, "a unique ID of each email" (the same in every
 * label), and X-GM-THRID, its thread's id; both 64-bit numbers written as atoms
 * (https://developers.google.com/gmail/imap/imap-extensions).
 */
const GMAIL_ITEMS = new Set(['X-GM-MSGID', 'X-GM-THRID']);

const SECTION_ITEM = /^(BODY|BINARY)(\.PEEK)?\[([^\]]*)\](?:<(\d+)(?:\.(\d+))?>)?$/i;

function parseSection(text: string): Section | undefined {
  const upper = text.toUpperCase();
  if (upper === '') {
    return { part: 'full' };
  }
  if (upper === 'HEADER') {
    return { part: 'header' };
  }
  // A message without MIME structure has one part, its text (RFC 3501 section 6.4.5)
  if (upper === 'TEXT' || upper === '1') {
    return { part: 'text' };
  }
  const fields = /^HEADER\.FIELDS(\.NOT)? \(([^)]*)\)$/.exec(upper);
  if (fields) {
    return { part: 'fields', names: (fields[2] ?? '').split(' ').filter(Boolean), exclude: !!fields[1] };
  }
  return undefined;
}

/** Parses one fetch attribute; a string is an error message. */
function parseItem(text: string, gmail: boolean): FetchItem | string {
  const upper = text.toUpperCase();
  if (SIMPLE_ITEMS.has(upper) || (gmail && GMAIL_ITEMS.has(upper))) {
    return { kind: upper as 'UID' };
  }
  switch (upper) {
    case 'RFC822':
      return { kind: 'section', label: 'RFC822', section: { part: 'full' }, peek: false };
    case 'RFC822.HEADER':
      return { kind: 'section', label: 'RFC822.HEADER', section: { part: 'header' }, peek: true };
    case 'RFC822.TEXT':
      return { kind: 'section', label: 'RFC822.TEXT', section: { part: 'text' }, peek: false };
  }
  const match = SECTION_ITEM.exec(text);
  const section = match && parseSection(match[3] ?? '');
  if (!match || !section) {
    return `Unsupported FETCH item ${text}`;
  }
  const start = match[4] === undefined ? undefined : Number(match[4]);
  const kind = (match[1] ?? 'BODY').toUpperCase();
  return {
    kind: 'section',
    label: `${kind}[${match[3] ?? ''}]${start === undefined ? '' : `<${start}>`}`,
    section,
    peek: !!match[2],
    start,
    length: match[5] === undefined ? undefined : Number(match[5]),
  };
}

function parseItems(arg: ImapArg | undefined, gmail: boolean): FetchItem[] | string {
  const texts = arg?.kind === 'list' ? arg.items.map(argText) : [argText(arg)];
  const items: FetchItem[] = [];
  for (const text of texts) {
    if (text === undefined) {
      return 'FETCH items must be atoms';
    }
    const expanded = MACROS[text.toUpperCase()] ?? [text];
    for (const name of expanded) {
      const item = parseItem(name, gmail);
      if (typeof item === 'string') {
        return item;
      }
      items.push(item);
    }
  }
  return items.length ? items : 'FETCH expects at least one item';
}

function sectionBytes(message: StoredMessage, section: Section): Buffer {
  if (section.part === 'full') {
    return message.raw;
  }
  const { header, text } = splitMessage(message.raw);
  switch (section.part) {
    case 'header':
      return header;
    case 'text':
      return text;
    case 'fields':
      return selectHeaderFields(header, section.names, section.exclude);
  }
}

function itemParts(item: FetchItem, message: StoredMessage): ResponsePart[] {
  switch (item.kind) {
    case 'UID':
      return [`UID ${message.uid}`];
    case 'FLAGS':
      return [`FLAGS ${formatFlags(message.flags)}`];
    case 'RFC822.SIZE':
      return [`RFC822.SIZE ${message.raw.length}`];
    case 'INTERNALDATE':
      return [`INTERNALDATE ${formatDateTime(message.internalDate)}`];
    case 'ENVELOPE':
      return ['ENVELOPE ', ...envelope(message.raw)];
    // Each message is a thread of its own here.
    case 'X-GM-MSGID':
    case 'X-GM-THRID':
      return [`${item.kind} ${message.gmMsgId ?? '0'}`];
    case 'section': {
      let bytes = sectionBytes(message, item.section);
      if (item.start !== undefined) {
        const end = item.length === undefined ? bytes.length : item.start + item.length;
        bytes = bytes.subarray(Math.min(item.start, bytes.length), Math.min(end, bytes.length));
      }
      return [`${item.label} `, ...literal(bytes)];
    }
  }
}

export const fetch: CommandSpec = {
  states: SELECTED,
  uid: true,
  run(ctx, { uid, args }) {
    const view = ctx.selected;
    const ranges = parseSequenceSet(argText(args[0]) ?? '');
    const items = parseItems(args[1], ctx.settings.gmail ?? false);
    if (!view || !ctx.user || !ranges || args.length > 2) {
      return bad('FETCH expects a sequence set and items');
    }
    if (typeof items === 'string') {
      return bad(items);
    }
    if (uid && !items.some((item) => item.kind === 'UID')) {
      items.unshift({ kind: 'UID' });
    }
    const marksSeen = !view.readOnly && items.some((item) => item.kind === 'section' && !item.peek);
    let changed = false;
    for (const { seq, message } of view.select(ranges, uid)) {
      // A server may leave out a message it can no longer serve (expunged by another session).
      if (ctx.faults.omitsFromFetch(message.uid)) continue;
      const answer = [...items];
      if (marksSeen && !message.flags.has('\\Seen')) {
        message.flags.add('\\Seen');
        changed = true;
        if (!answer.some((item) => item.kind === 'FLAGS')) {
          answer.push({ kind: 'FLAGS' });
        }
      }
      const parts: ResponsePart[] = [`${seq} FETCH (`];
      answer.forEach((item, index) => parts.push(...(index ? [' '] : []), ...itemParts(item, message)));
      parts.push(')');
      ctx.untagged(...parts);
      if (answer.some((item) => item.kind === 'FLAGS')) {
        view.flagsReported(message);
      }
    }
    if (changed) {
      ctx.store.changed(ctx.user, view.mailbox);
    }
    return ok('FETCH completed');
  },
};
