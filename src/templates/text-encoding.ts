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
    return new TextDecoder(label);
  } catch {
    return null; // not an encoding this runtime knows
  }
}

/** A response file's text. Throws ResponseFileError for an encoding that cannot be read. */
export function decodeXmlFile(bytes: Buffer): string {
  const detected = byteOrderMark(bytes) ?? unmarkedUtf16(bytes);
  if (detected) return new TextDecoder(detected).decode(bytes);
  const head = bytes.subarray(0, SNIFF_BYTES).toString('latin1');
  const declared = /^\s*<\?xml[^>]*?\sencoding\s*=\s*["']([A-Za-z][A-Za-z0-9._-]*)["']/.exec(head)?.[1];
  if (declared === undefined) return new TextDecoder('utf-8').decode(bytes);
  const decoder = decoderFor(declared);
  if (!decoder) throw new ResponseFileError(1, `the XML declaration names an encoding that cannot be read: '${declared}'`);
  return decoder.decode(bytes);
}

/** A Src file's text (plain text, or HTML with a `<meta charset>`); UTF-8 when nothing says otherwise. */
export function decodeSrcFile(bytes: Buffer, html: boolean): string {
  const marked = byteOrderMark(bytes);
  if (marked) return new TextDecoder(marked).decode(bytes);
  if (html) {
    const head = bytes.subarray(0, SNIFF_BYTES).toString('latin1');
    const declared = /<meta[^>]*?charset\s*=\s*["']?([A-Za-z][A-Za-z0-9._-]*)/i.exec(head)?.[1];
    const decoder = declared === undefined ? null : decoderFor(declared);
    if (decoder) return decoder.decode(bytes);
  }
  return new TextDecoder('utf-8').decode(bytes);
}
