import { TextDecoder } from 'node:util';
import { ResponseFileError } from './response-xml.js';

/**
 * Response files and their Src files in the encoding they declare, as XML and HTML require
 * (the reference: "all standard XML encoding rules must be observed"): a byte-order mark first,
 * then the XML declaration's `encoding` (response files) or a `<meta charset>` (HTML, as Word
 * saves it: `charset=windows-1252`), else UTF-8.
 */

/** How far into a file its declaration of an encoding is looked for, bytes. */
const SNIFF_BYTES = 1024;

function byteOrderMark(bytes: Buffer): string | null {
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) return 'utf-8';
  if (bytes[0] === 0xff && bytes[1] === 0xfe) return 'utf-16le';
  if (bytes[0] === 0xfe && bytes[1] === 0xff) return 'utf-16be';
  return null;
}

/** UTF-16 without a mark, told by the `<?` of the declaration (XML 1.0, appendix F). */
function unmarkedUtf16(bytes: Buffer): string | null {
  if (bytes[0] === 0x3c && bytes[1] === 0x00 && bytes[2] === 0x3f && bytes[3] === 0x00) return 'utf-16le';
  if (bytes[0] === 0x00 && bytes[1] === 0x3c && bytes[2] === 0x00 && bytes[3] === 0x3f) return 'utf-16be';
  return null;
}

function decoderFor(label: string): TextDecoder | null {
  try {
    // Fatal: bytes that are not of the encoding (an ANSI file taken for UTF-8) are reported, not
    // silently turned into U+FFFD.
    return new TextDecoder(label, { fatal: true });
  } catch {
    return null; // not an encoding this runtime knows
  }
}

/** A file's bytes are not valid in its encoding: which encoding, and where the first bad byte is. */
export class EncodingError extends Error {
  constructor(
    readonly encoding: string,
    /** 1-based line of the first invalid byte. */
    readonly line: number,
  ) {
    super(`not valid ${encoding} at line ${line}`);
  }
}

/** Decodes with a fatal decoder; throws EncodingError naming the line of the first invalid byte. */
function decodeStrictly(decoder: TextDecoder, bytes: Buffer): string {
  try {
    return decoder.decode(bytes);
  } catch {
    // The longest prefix that decodes (streaming: a character cut at the end is not an error).
    let valid = 0;
    let invalid = bytes.length;
    while (invalid - valid > 1) {
      const middle = Math.floor((valid + invalid) / 2);
      try {
        new TextDecoder(decoder.encoding, { fatal: true }).decode(bytes.subarray(0, middle), { stream: true });
        valid = middle;
      } catch {
        invalid = middle;
      }
    }
    const line = bytes.subarray(0, valid).filter((b) => b === 0x0a).length + 1;
    throw new EncodingError(decoder.encoding, line);
  }
}

/**
 * A response file's text. Throws ResponseFileError for an encoding that cannot be read. Bytes not
 * of the encoding become U+FFFD and `invalid` says where: XML calls such a file not well-formed,
 * but one that loaded before (when they were replaced silently) must not lose its responses with
 * an upgrade; the administrator is warned instead.
 */
export function decodeXmlFile(bytes: Buffer): { text: string; invalid?: EncodingError } {
  const detected = byteOrderMark(bytes) ?? unmarkedUtf16(bytes);
  const head = detected ? '' : bytes.subarray(0, SNIFF_BYTES).toString('latin1');
  const declared = /^\s*<\?xml[^>]*?\sencoding\s*=\s*["']([A-Za-z][A-Za-z0-9._-]*)["']/.exec(head)?.[1];
  const decoder = decoderFor(detected ?? declared ?? 'utf-8');
  if (!decoder) throw new ResponseFileError(1, `the XML declaration names an encoding that cannot be read: '${declared}'`);
  return decodeReportingInvalid(decoder, bytes);
}

/** The text, with U+FFFD for bytes not of the encoding and `invalid` naming the first of them. */
function decodeReportingInvalid(decoder: TextDecoder, bytes: Buffer): { text: string; invalid?: EncodingError } {
  try {
    return { text: decodeStrictly(decoder, bytes) };
  } catch (err) {
    if (!(err instanceof EncodingError)) throw err;
    return { text: new TextDecoder(decoder.encoding).decode(bytes), invalid: err };
  }
}

/**
 * A Src file's text (plain text, or HTML with a `<meta charset>`); UTF-8 when nothing says
 * otherwise. Bytes not of the encoding become U+FFFD and `invalid` says where.
 */
export function decodeSrcFile(bytes: Buffer, html: boolean): { text: string; invalid?: EncodingError } {
  const marked = byteOrderMark(bytes);
  let decoder = marked ? decoderFor(marked) : null;
  if (!decoder && html) {
    const head = bytes.subarray(0, SNIFF_BYTES).toString('latin1');
    const declared = /<meta[^>]*?charset\s*=\s*["']?([A-Za-z][A-Za-z0-9._-]*)/i.exec(head)?.[1];
    decoder = declared === undefined ? null : decoderFor(declared);
  }
  decoder ??= decoderFor('utf-8') as TextDecoder;
  return decodeReportingInvalid(decoder, bytes);
}
