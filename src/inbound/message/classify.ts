import type { Classification as StoredClassification } from '../../store/rows.js';
import { isOwnMessageId } from '../../shared/mail-headers.js';
import type { ParsedMessage } from './parsed-message.js';

/** `Precedence` values that mark mass or automatic mail. */
const AUTO_PRECEDENCE = new Set(['bulk', 'junk', 'list']);
/** Sender local parts of delivery reports. */
const REPORTING_SENDERS = new Set(['mailer-daemon', 'postmaster']);

export interface ClassifyOptions {
  /** Domain of the Message-IDs Mailroom generates for outgoing mail, e.g. `mailroom.example.com`. */
  ownMessageIdDomain: string;
  /** Name of the loop header Mailroom adds to outgoing mail; normally `LOOP_HEADER` of `shared/mail-headers`. */
  loopHeaderName: string;
  /** The value this instance writes into the loop header; when it matches, a reason says so. */
  ownInstanceLoopValue?: string;
}

/** What is known of a message beyond its headers. */
export interface ClassifyEnvelope {
  /** Address of the From header. */
  from?: string | null;
  /** Message-ID without angle brackets. */
  messageId?: string | null;
  /** First Message-ID of In-Reply-To, without angle brackets. */
  inReplyTo?: string | null;
  /** Envelope sender (MAIL FROM) when the server exposes it; '' or '<>' is the null sender. */
  sender?: string | null;
}

/** What `classifyMessage` decides; stored with the message as it is. */
export type Classification = StoredClassification;

/**
 * Classifies a message as auto-reply, bounce/delivery report and/or mail loop. Pure; consumers
 * decide what to do, Mailroom never answers automatically.
 *
 * - auto-reply: `Auto-Submitted` other than `no`, `X-Autoreply`, `X-Autorespond`, `Precedence`
 *   bulk/junk/list, `X-Auto-Response-Suppress`;
 * - bounce: null sender (`Return-Path: <>` or an empty envelope sender), `multipart/report`, From
 *   `MAILER-DAEMON` or `postmaster`;
 * - loop: our loop header present (any value), or a Message-ID on our own domain (our own mail came
 *   back). An In-Reply-To on our domain is an ordinary reply and adds only a reason next to the
 *   loop header.
 *
 * @param headers header values by name (case-insensitive), e.g. `ParsedMessage.headers`
 */
export function classifyMessage(
  headers: Readonly<Record<string, string | undefined>>,
  envelope: ClassifyEnvelope,
  options: ClassifyOptions,
): Classification {
  const header = lowerCaseKeys(headers);
  const reasons: string[] = [];
  const add = (reason: string): true => {
    reasons.push(reason);
    return true;
  };
  let autoReply = false;
  let bounce = false;
  let loop = false;

  const autoSubmitted = firstToken(header.get('auto-submitted'));
  if (autoSubmitted !== null && autoSubmitted !== '' && autoSubmitted !== 'no') {
    autoReply = add(`auto-submitted:${autoSubmitted}`);
  }
  for (const name of ['x-autoreply', 'x-autorespond', 'x-auto-response-suppress']) {
    if (header.has(name)) autoReply = add(name);
  }
  const precedence = firstToken(header.get('precedence'));
  if (precedence !== null && AUTO_PRECEDENCE.has(precedence)) autoReply = add(`precedence:${precedence}`);

  if (isNullSender(header.get('return-path'))) bounce = add('null-sender');
  else if (isNullSender(envelope.sender)) bounce = add('null-envelope-sender');
  if (firstToken(header.get('content-type')) === 'multipart/report') bounce = add('multipart-report');
  const fromLocal = localPart(envelope.from);
  if (fromLocal !== null && REPORTING_SENDERS.has(fromLocal)) bounce = add(`from:${fromLocal}`);

  const ownDomain = options.ownMessageIdDomain.trim().toLowerCase();
  const loopValue = header.get(options.loopHeaderName.toLowerCase());
  if (loopValue !== undefined) {
    loop = add('loop-header');
    const own = options.ownInstanceLoopValue;
    if (own !== undefined && loopValue.split(/[\s,]+/).includes(own)) add('loop-header:own-instance');
    if (ownDomain !== '' && idDomain(envelope.inReplyTo) === ownDomain) add('in-reply-to:own-domain');
    if (isOwnMessageId(envelope.inReplyTo)) add('in-reply-to:own');
  }
  if (ownDomain !== '' && idDomain(envelope.messageId) === ownDomain) loop = add('message-id:own-domain');
  // Mailroom's Message-IDs carry the sending address's domain, shared with real people: its own
  // are known by their form instead (see ownMessageId).
  else if (isOwnMessageId(envelope.messageId)) loop = add('message-id:own');

  return { autoReply, bounce, loop, reasons };
}

/** {@link classifyMessage} for a parsed message; `sender` is the envelope sender when known. */
export function classifyParsed(
  message: Pick<ParsedMessage, 'headers' | 'from' | 'messageId' | 'inReplyTo'>,
  options: ClassifyOptions,
  sender?: string | null,
): Classification {
  return classifyMessage(
    message.headers,
    { from: message.from?.address ?? null, messageId: message.messageId, inReplyTo: message.inReplyTo, sender },
    options,
  );
}

function lowerCaseKeys(headers: Readonly<Record<string, string | undefined>>): Map<string, string> {
  const map = new Map<string, string>();
  for (const [name, value] of Object.entries(headers)) {
    const key = name.toLowerCase();
    if (value !== undefined && !map.has(key)) map.set(key, value);
  }
  return map;
}

/** The value before any `;` parameters, trimmed and lower-cased; null when the header is absent. */
function firstToken(value: string | undefined): string | null {
  if (value === undefined) return null;
  return (value.split(';')[0] ?? '').trim().toLowerCase();
}

/** `<>`, `< >` or an empty value (comments ignored); null/undefined means unknown, not null sender. */
function isNullSender(value: string | null | undefined): boolean {
  if (value === null || value === undefined) return false;
  return /^(?:<\s*>)?$/.test(value.replace(/\([^)]*\)/g, '').trim());
}

function localPart(address: string | null | undefined): string | null {
  if (!address) return null;
  const at = address.lastIndexOf('@');
  return (at === -1 ? address : address.slice(0, at)).trim().toLowerCase();
}

/** Domain of a Message-ID (`local@domain`, angle brackets tolerated), lower-cased. */
function idDomain(id: string | null | undefined): string | null {
  if (!id) return null;
  const bare = id.trim().replace(/^<|>$/g, '');
  const at = bare.lastIndexOf('@');
  return at === -1 ? null : bare.slice(at + 1).toLowerCase();
}
