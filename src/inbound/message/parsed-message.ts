import type { AttachmentInfo } from '../../store/rows.js';
/**
 * The shape of a parsed message and of parse failures, the limits, and the messages exchanged with
 * the parse worker. Plain types and constants: importing this never loads mailparser.
 */

/** Bounds on what the parser accepts; every message beyond one is reported, never parsed. */
export interface ParseLimits {
  /** [maxBytes=26214400] largest message, in bytes (25 MiB). */
  maxBytes: number;
  /** [maxHeaderBytes=1048576] largest header block (the message's or a part's), in bytes (1 MiB). */
  maxHeaderBytes: number;
  /** [maxDepth=50] deepest nesting of multiparts and embedded messages. */
  maxDepth: number;
  /** [maxParts=1000] most MIME body parts in one message. */
  maxParts: number;
  /**
   * [maxHtmlToTextChars=4194304] longest HTML part, in characters, converted to plain text for an
   * HTML-only message (conversion is the slowest step: ~8 s for 23 MB). Longer HTML is kept as
   * `html`; its `text` is ''.
   */
  maxHtmlToTextChars: number;
}

export const DEFAULT_PARSE_LIMITS: Readonly<ParseLimits> = Object.freeze({
  maxBytes: 25 * 1024 * 1024,
  maxHeaderBytes: 1024 * 1024,
  maxDepth: 50,
  maxParts: 1000,
  maxHtmlToTextChars: 4 * 1024 * 1024,
});

/**
 * [998] longest Message-ID kept, in UTF-8 bytes (RFC 5322's line limit: no real one is longer).
 * Message-IDs are indexed (and are dedupe keys); a PostgreSQL btree entry holds at most 2,704
 * bytes, so a longer value would make every insert of its message fail.
 */
export const MAX_MESSAGE_ID_BYTES = 998;

/**
 * Whether a date can be stored: years 1 to 9999. `toISOString` writes later years as `+010000-…`
 * and earlier ones as `-000001-…`, which PostgreSQL's `timestamptz` refuses; hostile mail has them.
 */
export function isStorableDate(date: Date): boolean {
  const year = date.getUTCFullYear(); // NaN for an invalid date: not storable either
  return year >= 1 && year <= 9999;
}

export type ParseFailureReason =
  | 'too-large'
  | 'header-too-large'
  | 'mime-too-deep'
  | 'too-many-parts'
  | 'parse-timeout'
  | 'parse-error'
  | 'worker-crashed'
  | 'fetch-failed';

/** Why a message was not parsed; the pipeline quarantines it with this reason. */
export interface ParseFailure {
  ok: false;
  reason: ParseFailureReason;
  detail: string;
}

export interface ParsedAddress {
  /** As written in the message, IDN domains in Unicode; normalize before comparing. */
  address: string;
  /** Display name, '' when none. */
  name: string;
}

/** An attachment without its content; fetch the bytes with `extractAttachment(raw, index)`. */
export type ParsedAttachment = AttachmentInfo;

/** Headers copied verbatim (unfolded, trimmed, first occurrence) for classification and display. */
export const SELECTED_HEADERS = [
  'auto-submitted',
  'x-autoreply',
  'x-autorespond',
  'precedence',
  'x-auto-response-suppress',
  'return-path',
  'content-type',
  'x-mailroom-loop',
  'x-mailroom-heartbeat',
  'list-id',
] as const;

/** A parsed message as plain JSON: it crosses the worker thread boundary and may be stored as is. */
export interface ParsedMessage {
  /** Message-ID without angle brackets, or null when absent or over {@link MAX_MESSAGE_ID_BYTES}. */
  messageId: string | null;
  subject: string;
  from: ParsedAddress | null;
  /** Every Reply-To address (the header may name several); empty when absent. */
  replyTo: ParsedAddress[];
  to: ParsedAddress[];
  cc: ParsedAddress[];
  /** Raw `Delivered-To` values, one per header, in header order. */
  deliveredTo: string[];
  /** Raw `X-Original-To` values, one per header, in header order. */
  xOriginalTo: string[];
  /** ISO 8601, or null when the Date header is missing, unreadable or not {@link isStorableDate}. */
  date: string | null;
  /** The first Message-ID of In-Reply-To, without angle brackets. */
  inReplyTo: string | null;
  /** Message-IDs of References, without angle brackets, in order. */
  references: string[];
  text: string | null;
  html: string | null;
  attachments: ParsedAttachment[];
  /** {@link SELECTED_HEADERS} that are present, keyed by lower-case name. */
  headers: Record<string, string>;
  /**
   * SHA-256 hex of the raw header block and the total size: the dedupe key of a message without a
   * Message-ID (null when it has one: then it is not needed).
   */
  headerHash: string | null;
}

export type ParseResult = { ok: true; message: ParsedMessage } | ParseFailure;

export interface ExtractedAttachment {
  filename: string | null;
  contentType: string;
  content: Buffer;
}

/** Thrown (rejected) by `ParsePool.extractAttachment` when the message cannot be parsed at all. */
export class ParseFailedError extends Error {
  readonly reason: ParseFailureReason;
  readonly detail: string;
  constructor(failure: ParseFailure) {
    super(`${failure.reason}: ${failure.detail}`);
    this.name = 'ParseFailedError';
    this.reason = failure.reason;
    this.detail = failure.detail;
  }
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Main thread to worker. `raw` is a transferred copy of the message. */
export type WorkerRequest =
  | { id: number; kind: 'parse'; raw: ArrayBuffer; limits: ParseLimits }
  /** Several small messages in one transfer: `raw` holds them back to back, `lengths` says where each ends. */
  | { id: number; kind: 'parse-batch'; raw: ArrayBuffer; lengths: number[]; limits: ParseLimits }
  | { id: number; kind: 'extract'; raw: ArrayBuffer; index: number; limits: ParseLimits };

/** Worker to main thread. */
export type WorkerResponse =
  | { type: 'ready' }
  | { type: 'parsed'; id: number; result: ParseResult }
  | { type: 'parsed-batch'; id: number; results: ParseResult[] }
  | {
      type: 'extracted';
      id: number;
      attachment: { filename: string | null; contentType: string; content: Uint8Array } | null;
    }
  | { type: 'failed'; id: number; failure: ParseFailure };
