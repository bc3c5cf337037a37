/**
 * A cheap, line-based look at the MIME structure of a raw message, run before mailparser so that a
 * hostile message (a header of megabytes, multiparts nested thousands deep, tens of thousands of
 * parts) is refused in one linear pass instead of being parsed. It follows `Content-Type:
 * multipart/...; boundary=` declarations and boundary lines the way a MIME parser does, erring on
 * the side of counting too much.
 */

export interface MimeScanLimits {
  /** Largest header block (the message's, or any part's), in bytes. */
  maxHeaderBytes: number;
  /** Deepest nesting of multiparts and embedded messages; the top-level multipart is depth 1. */
  maxDepth: number;
  /** Most body parts (boundary delimiter lines) in the whole message. */
  maxParts: number;
}

export type MimeScanResult =
  | {
      ok: true;
      /** Length of the top-level header block in bytes, up to and including the blank line. */
      headerBytes: number;
      /** Deepest nesting seen. */
      depth: number;
      /** Body parts seen. */
      parts: number;
    }
  | { ok: false; reason: 'header-too-large' | 'mime-too-deep' | 'too-many-parts'; detail: string };

interface Node {
  /** The boundary of a multipart; null for an embedded message/rfc822. */
  boundary: string | null;
}

interface HeaderBlock {
  bytes: number;
  contentType: string;
  transferEncoding: string;
  /** Which header a continuation line extends. */
  current: 'content-type' | 'content-transfer-encoding' | null;
}

const LF = 0x0a;
const CR = 0x0d;
const DASH = 0x2d;
const MULTIPART = /^\s*multipart\/[^\s;]+/i;
const EMBEDDED_MESSAGE = /^\s*message\/(?:rfc822|global)\s*(?:;|$)/i;
const BOUNDARY_PARAM = /;\s*boundary\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s;"]+))/i;

/** Scans `raw` once and reports the first limit it exceeds. */
export function scanMime(raw: Buffer, limits: MimeScanLimits): MimeScanResult {
  const stack: Node[] = [];
  let maxDepth = 0;
  let parts = 0;
  let headerBytes = -1;
  let block: HeaderBlock | null = newBlock();
  let pos = 0;
  while (pos < raw.length) {
    const newline = raw.indexOf(LF, pos);
    const next = newline === -1 ? raw.length : newline + 1;
    let end = newline === -1 ? raw.length : newline;
    if (end > pos && raw[end - 1] === CR) end--;

    // Like mailsplit, a delimiter line counts wherever it appears, even inside a header block.
    if (stack.length > 0 && end - pos >= 2 && raw[pos] === DASH && raw[pos + 1] === DASH) {
      const delimiter = matchBoundary(stack, raw.toString('latin1', pos + 2, end).trimEnd());
      if (delimiter !== null) {
        stack.length = delimiter.index + 1;
        block = null;
        if (delimiter.closing) stack.pop();
        else {
          parts++;
          if (parts > limits.maxParts) return fail('too-many-parts', `more than ${limits.maxParts} MIME parts`);
          block = newBlock();
        }
        pos = next;
        continue;
      }
    }
    if (block !== null) {
      block.bytes += next - pos;
      if (block.bytes > limits.maxHeaderBytes) {
        const where = stack.length === 0 ? 'the message header' : `a header at depth ${stack.length}`;
        return fail('header-too-large', `${where} exceeds ${limits.maxHeaderBytes} bytes`);
      }
      if (end === pos) {
        if (headerBytes === -1) headerBytes = block.bytes;
        const child = childOf(block);
        block = null;
        if (child !== null) {
          stack.push(child);
          maxDepth = Math.max(maxDepth, stack.length);
          if (stack.length > limits.maxDepth) {
            return fail('mime-too-deep', `MIME nesting deeper than ${limits.maxDepth} levels`);
          }
          if (child.boundary === null) block = newBlock();
        }
      } else {
        readHeaderLine(block, raw.toString('latin1', pos, end));
      }
    }
    pos = next;
  }
  return { ok: true, headerBytes: headerBytes === -1 ? raw.length : headerBytes, depth: maxDepth, parts };
}

function newBlock(): HeaderBlock {
  return { bytes: 0, contentType: '', transferEncoding: '', current: null };
}

function readHeaderLine(block: HeaderBlock, line: string): void {
  const first = line.charCodeAt(0);
  if (first === 0x20 || first === 0x09) {
    if (block.current === 'content-type') block.contentType += line;
    else if (block.current === 'content-transfer-encoding') block.transferEncoding += line;
    return;
  }
  const colon = line.indexOf(':');
  const name = colon === -1 ? '' : line.slice(0, colon).trim().toLowerCase();
  if (name === 'content-type' && block.contentType === '') {
    block.current = name;
    block.contentType = line.slice(colon + 1);
  } else if (name === 'content-transfer-encoding' && block.transferEncoding === '') {
    block.current = name;
    block.transferEncoding = line.slice(colon + 1);
  } else {
    block.current = null;
  }
}

/** What a finished header block opens: a multipart with its boundary, an embedded message, or nothing. */
function childOf(block: HeaderBlock): Node | null {
  const contentType = block.contentType;
  if (MULTIPART.test(contentType)) {
    const match = BOUNDARY_PARAM.exec(contentType);
    const boundary = match?.[1] ?? match?.[2];
    return boundary ? { boundary: boundary.trimEnd() } : null;
  }
  if (EMBEDDED_MESSAGE.test(contentType)) {
    // An encoded embedded message is an opaque leaf to the parser; only a plain one nests.
    const encoding = block.transferEncoding.trim().toLowerCase();
    return encoding === 'base64' || encoding === 'quoted-printable' ? null : { boundary: null };
  }
  return null;
}

/** The innermost open multipart whose boundary this line (without its leading `--`) is. */
function matchBoundary(stack: Node[], line: string): { index: number; closing: boolean } | null {
  for (let index = stack.length - 1; index >= 0; index--) {
    const boundary = (stack[index] as Node).boundary;
    if (boundary === null || !line.startsWith(boundary)) continue;
    if (line.length === boundary.length) return { index, closing: false };
    if (line.length === boundary.length + 2 && line.endsWith('--')) return { index, closing: true };
  }
  return null;
}

function fail(reason: 'header-too-large' | 'mime-too-deep' | 'too-many-parts', detail: string): MimeScanResult {
  return { ok: false, reason, detail };
}
