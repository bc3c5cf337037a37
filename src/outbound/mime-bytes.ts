import { encode as base64Encode, wrap as base64Wrap } from 'nodemailer/lib/base64';
import type MimeNode from 'nodemailer/lib/mime-node';
import { encode as qpEncode, wrap as qpWrap } from 'nodemailer/lib/qp';

/** Line length of the encoded bodies, as MimeNode's encoders use by default. */
const LINE_LENGTH = 76;
/** The quoted-printable encoder encodes its input in slices of this many bytes (its ENCODE_SLICE_SIZE); larger bodies are left to build(). */
const QP_SLICE_BYTES = 64 * 1024;

/** The parts of a MimeNode the serializer reads besides its public methods. */
interface NodeInternals {
  _raw?: unknown;
  _transforms?: unknown[];
  _processFuncs?: unknown[];
  newline?: unknown;
}

/**
 * The bytes `MimeNode.build()` gives for a compiled tree whose bodies are all strings or Buffers
 * (what `composeMessage` makes), written in one synchronous pass: the headers still come from
 * nodemailer (`buildHeaders`, the structured fields), and the bodies go through nodemailer's own
 * base64 and quoted-printable functions (base64's streaming encoder gives what `wrap(encode())`
 * gives; the quoted-printable one is followed step by step, see `quotedPrintable`). `build()` instead streams every node through a PassThrough, an encoder
 * stream and a pipeline with an AbortController, hopping through setImmediate once per node: most
 * of the cost of composing a short reply. `test/unit/outbound/mime-bytes.test.ts` holds the two
 * equal over texts, HTML, attachments and multipart trees.
 *
 * Returns null for a tree it does not cover (raw nodes, streams, files, URLs, transforms, line
 * ending conversion, binary quoted-printable): the caller uses `build()` for those.
 */
export function mimeBytes(root: MimeNode): Buffer | null {
  if (!covered(root)) return null;
  const out: Buffer[] = [];
  writeNode(root, out);
  // build() ends the message with a line break (its LastNewline stage).
  const last = out.findLast((chunk) => chunk.length > 0);
  const lastByte = last?.[last.length - 1];
  if (lastByte === 0x0d) out.push(Buffer.from('\n'));
  else if (lastByte !== 0x0a) out.push(Buffer.from('\r\n'));
  return Buffer.concat(out);
}

/** Whether the serializer covers a node and all below it; asks nothing that changes the tree. */
function covered(node: MimeNode): boolean {
  const internals = node as unknown as NodeInternals;
  if (internals._raw || internals._transforms?.length || internals._processFuncs?.length || internals.newline) {
    return false;
  }
  const content = node.content as unknown;
  if (content && typeof content !== 'string' && !Buffer.isBuffer(content)) return false;
  // Outside text/* the quoted-printable encoder treats a lone CR or LF as data; the plain
  // functions cannot. (getTransferEncoding reads the same header.)
  if (content && node.getTransferEncoding() === 'quoted-printable') {
    const contentType = node.getHeader('Content-Type');
    if (typeof contentType !== 'string' || !/^text\//i.test(contentType.trim())) return false;
    if (Buffer.byteLength(content as string | Buffer) > QP_SLICE_BYTES) return false;
  }
  return node.childNodes.every(covered);
}

/** Appends one node and its children, in the order `MimeNode.stream()` writes them. */
function writeNode(node: MimeNode, out: Buffer[]): void {
  const content = node.content as string | Buffer | undefined;
  // stream() asks for the transfer encoding before it builds the headers; so does this.
  const transferEncoding = node.getTransferEncoding();
  out.push(Buffer.from(`${node.buildHeaders()}\r\n\r\n`));
  if (content) out.push(encodeBody(content, transferEncoding));
  if (!node.multipart) return;
  for (const [index, child] of node.childNodes.entries()) {
    out.push(Buffer.from(`${index > 0 ? '\r\n' : ''}--${String(node.boundary)}\r\n`));
    writeNode(child, out);
  }
  out.push(Buffer.from(`\r\n--${String(node.boundary)}--\r\n`));
}

/** A body in its transfer encoding (anything but base64 and quoted-printable goes as it is). */
function encodeBody(content: string | Buffer, transferEncoding: string | false): Buffer {
  const bytes = typeof content === 'string' ? Buffer.from(content, 'utf8') : content;
  if (transferEncoding === 'base64') return Buffer.from(base64Wrap(base64Encode(bytes), LINE_LENGTH), 'latin1');
  if (transferEncoding === 'quoted-printable') return Buffer.from(quotedPrintable(bytes), 'latin1');
  return bytes;
}

/**
 * Quoted-printable as nodemailer's streaming encoder makes it of a text body handed over in one
 * chunk (as build() does) of at most one slice: the trailing blanks are held back and encoded
 * after the rest, and each part is wrapped on from the last unfinished line. That differs from
 * `wrap(encode(body))` where the held-back blanks start a new line.
 */
function quotedPrintable(bytes: Buffer): string {
  let end = bytes.length;
  while (end > 0 && (bytes[end - 1] === 0x20 || bytes[end - 1] === 0x09)) end -= 1;
  let done = '';
  let line = '';
  for (const part of [bytes.subarray(0, end), bytes.subarray(end)]) {
    if (part.length === 0) continue;
    const wrapped = qpWrap(line + qpEncode(part), LINE_LENGTH);
    const lastBreak = wrapped.lastIndexOf('\n');
    done += wrapped.substring(0, lastBreak + 1);
    line = wrapped.substring(lastBreak + 1);
  }
  return done + line;
}
