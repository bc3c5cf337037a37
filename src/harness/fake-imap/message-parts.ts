/**
 * Reading a raw RFC 5322 message the way FETCH needs it: header and text sections, selected
 * header fields, and the ENVELOPE structure. Header values stay as sent (encoded words
 * included), as IMAP servers return them.
 */
import addressparser from 'nodemailer/lib/addressparser';
import { nstring, type ResponsePart } from './response.js';

export interface MessageSections {
  /** The header including the blank line that ends it. */
  header: Buffer;
  text: Buffer;
}

export function splitMessage(raw: Buffer): MessageSections {
  const crlf = raw.indexOf('\r\n\r\n');
  const lf = raw.indexOf('\n\n');
  let end: number;
  if (crlf >= 0 && (lf < 0 || crlf < lf)) {
    end = crlf + 4;
  } else if (lf >= 0) {
    end = lf + 2;
  } else {
    end = raw.length;
  }
  return { header: raw.subarray(0, end), text: raw.subarray(end) };
}

interface HeaderField {
  /** Lower-cased field name. */
  name: string;
  /** The field's lines as sent, continuation lines included. */
  raw: string;
  /** The unfolded value without the name. */
  value: string;
}

function headerFields(header: Buffer): HeaderField[] {
  const fields: HeaderField[] = [];
  const lines = header.toString('latin1').split(/(?<=\n)/);
  for (const line of lines) {
    if (/^\r?\n$/.test(line)) {
      break;
    }
    const last = fields[fields.length - 1];
    if (/^[ \t]/.test(line) && last) {
      last.raw += line;
      last.value += line.replace(/\r?\n$/, '');
      continue;
    }
    const separator = line.indexOf(':');
    if (separator <= 0) {
      continue;
    }
    fields.push({
      name: line.slice(0, separator).trim().toLowerCase(),
      raw: line,
      value: line.slice(separator + 1).replace(/\r?\n$/, ''),
    });
  }
  return fields;
}

/** HEADER.FIELDS and HEADER.FIELDS.NOT: the selected fields and the blank line. */
export function selectHeaderFields(header: Buffer, names: readonly string[], exclude: boolean): Buffer {
  const wanted = new Set(names.map((name) => name.toLowerCase()));
  const selected = headerFields(header).filter((field) => wanted.has(field.name) !== exclude);
  return Buffer.from(`${selected.map((field) => field.raw.replace(/\r?\n$/, '\r\n')).join('')}\r\n`, 'latin1');
}

function headerValue(fields: readonly HeaderField[], name: string): string | undefined {
  const value = fields.find((field) => field.name === name)?.value.trim();
  return value === undefined || value === '' ? undefined : value;
}

/** Header values were read as latin1 so that 8-bit bytes survive; they go out as those bytes. */
function headerString(value: string | undefined): ResponsePart[] {
  return nstring(value === undefined ? undefined : Buffer.from(value, 'latin1'));
}

function addressList(value: string | undefined): ResponsePart[] {
  if (value === undefined) {
    return ['NIL'];
  }
  const addresses = addressparser(value, { flatten: true }).filter((entry) => entry.address);
  if (!addresses.length) {
    return ['NIL'];
  }
  const parts: ResponsePart[] = ['('];
  for (const entry of addresses) {
    const at = entry.address.lastIndexOf('@');
    const mailbox = at >= 0 ? entry.address.slice(0, at) : entry.address;
    const host = at >= 0 ? entry.address.slice(at + 1) : '';
    parts.push('(', ...headerString(entry.name || undefined), ' NIL ', ...headerString(mailbox), ' ');
    parts.push(...headerString(host), ')');
  }
  parts.push(')');
  return parts;
}

/** The ENVELOPE structure (RFC 3501 section 7.4.2); groups are flattened into their members. */
export function envelope(raw: Buffer): ResponsePart[] {
  const fields = headerFields(splitMessage(raw).header);
  const from = headerValue(fields, 'from');
  const items: ResponsePart[][] = [
    headerString(headerValue(fields, 'date')),
    headerString(headerValue(fields, 'subject')),
    addressList(from),
    addressList(headerValue(fields, 'sender') ?? from),
    addressList(headerValue(fields, 'reply-to') ?? from),
    addressList(headerValue(fields, 'to')),
    addressList(headerValue(fields, 'cc')),
    addressList(headerValue(fields, 'bcc')),
    headerString(headerValue(fields, 'in-reply-to')),
    headerString(headerValue(fields, 'message-id')),
  ];
  const parts: ResponsePart[] = ['('];
  items.forEach((item, index) => parts.push(...(index ? [' '] : []), ...item));
  parts.push(')');
  return parts;
}
