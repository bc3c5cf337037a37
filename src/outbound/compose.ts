import { randomUUID } from 'node:crypto';
import MailComposer from 'nodemailer/lib/mail-composer';
import type MimeNode from 'nodemailer/lib/mime-node';
import { LOOP_HEADER } from '../shared/mail-headers.js';
import './header-key-cache.js';
import { mimeBytes } from './mime-bytes.js';

/** A message to compile. Every header value goes through nodemailer's structured fields. */
export interface ComposeInput {
  from: { name: string; address: string };
  to: string[];
  cc: string[];
  bcc: string[];
  subject: string;
  text?: string | undefined;
  html?: string | undefined;
  attachments: Array<{ filename: string; contentType: string; content: Buffer; cid?: string | undefined }>;
  /** Without angle brackets, e.g. `uuid@mailroom.example.com`. */
  messageId: string;
  date: Date;
  inReplyTo?: string | undefined;
  references?: string[] | undefined;
  /** Value of the loop header (the instance), so inbound recognises our own mail. */
  loopValue: string;
  /** Extra headers Mailroom itself sets (heartbeat token). */
  extraHeaders?: Record<string, string>;
}

/** Strips CR, LF and other control characters: a value can never start a header of its own. */
export function headerSafe(value: string): string {
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  return value.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
}

/** The RFC 5322 bytes (fixed Message-ID and Date) and the SMTP envelope. */
export async function composeMessage(
  input: ComposeInput,
): Promise<{ raw: Buffer; envelope: { from: string; to: string[] } }> {
  const node = compileMessage(input);
  // Bcc is in the envelope only, never in the headers (MailComposer leaves it out of the output).
  const raw =
    mimeBytes(node) ??
    (await new Promise<Buffer>((resolve, reject) => node.build((err, out) => (err ? reject(err) : resolve(out)))));
  return { raw, envelope: { from: input.from.address, to: [...input.to, ...input.cc, ...input.bcc] } };
}

/**
 * The message's MIME tree, compiled by nodemailer's MailComposer from structured fields.
 * `baseBoundary` is the random part of the multipart boundaries (a buffered random UUID costs far
 * less than the randomBytes call MimeNode makes without it); tests fix it.
 */
export function compileMessage(input: ComposeInput, baseBoundary = randomUUID().replaceAll('-', '')): MimeNode {
  const options: ConstructorParameters<typeof MailComposer>[0] & { baseBoundary: string } = {
    baseBoundary,
    from: { name: headerSafe(input.from.name), address: input.from.address },
    to: input.to,
    cc: input.cc,
    bcc: input.bcc,
    subject: headerSafe(input.subject),
    text: input.text,
    html: input.html,
    attachments: input.attachments.map((a) => ({
      filename: headerSafe(a.filename),
      contentType: headerSafe(a.contentType),
      content: a.content,
      ...(a.cid !== undefined && { cid: headerSafe(a.cid) }),
    })),
    messageId: `<${input.messageId}>`,
    date: input.date,
    ...(input.inReplyTo !== undefined && { inReplyTo: `<${input.inReplyTo}>` }),
    ...(input.references !== undefined &&
      input.references.length > 0 && { references: input.references.map((r) => `<${r}>`) }),
    headers: { [LOOP_HEADER]: headerSafe(input.loopValue), ...input.extraHeaders },
  };
  return new MailComposer(options).compile();
}
