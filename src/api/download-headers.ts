import type { FastifyReply } from 'fastify';

/**
 * Headers of a file the API hands out (a message's source, an attachment): a download whatever
 * its type, never rendered or sniffed by a browser, with its file name as RFC 6266 says:
 * `filename="<ASCII fallback>"` for old clients and `filename*=UTF-8''<percent-encoded>`
 * (RFC 8187) for the real name, so that "Rechnung — € 日.pdf" downloads under its own name
 * (Node refuses characters beyond Latin-1 in a header value: it was a 500).
 */
export function sendAsDownload(reply: FastifyReply, contentType: string, filename: string): FastifyReply {
  return reply
    .type(safeContentType(contentType))
    .header('content-disposition', contentDisposition(filename))
    .header('x-content-type-options', 'nosniff')
    .header('content-security-policy', "default-src 'none'; sandbox");
}

/** A media type as the mail declared it when it is one (`type/subtype`, parameters dropped), else octet-stream. */
export function safeContentType(declared: string): string {
  const type = declared.split(';')[0]?.trim().toLowerCase() ?? '';
  return /^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}\/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$/.test(type)
    ? type
    : 'application/octet-stream';
}

export function contentDisposition(filename: string): string {
  // Control characters and path separators are never part of a name a browser should save.
  // eslint-disable-next-line no-control-regex -- control characters are what is taken out
  const name = filename.replace(/[\u0000-\u001f\u007f/\\]/g, '_').trim() || 'download';
  const fallback = name.replace(/[^\x20-\x7e]/g, '_').replace(/["%]/g, '_');
  const encoded = encodeURIComponent(name).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `attachment; filename="${fallback}"; filename*=UTF-8''${encoded}`;
}
