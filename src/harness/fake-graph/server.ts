import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { headerAddresses } from '../../shared/graph/mime-recipients.js';
import { makeTestCertificates, type TestCertificates } from '../fake-idp/certificates.js';
import { decodeState, encodeState, MailStore, WELL_KNOWN_FOLDERS, type FakeMessage } from './mail-store.js';

/**
 * A fake Microsoft Graph (mail only) for tests and local runs, after Microsoft's published
 * documentation of each endpoint (URLs beside each route below). HTTPS on loopback with its own
 * CA; bearer tokens are checked by `verifyToken` (hand it the fake identity provider's
 * `verifyAccessToken`).
 */

export interface FakeGraphOptions {
  /** [host='127.0.0.1'] */
  host?: string;
  /** [port=0] a free one */
  port?: number;
  /** The mailboxes (user principal names) it serves. [users=[]] */
  users?: readonly string[];
  /** Whether `token` opens `user`'s mailbox. [any non-empty token] */
  verifyToken?: (user: string, token: string) => boolean;
  /** [a new pair] */
  certificates?: TestCertificates;
  /** [10] delta page size when the client sends no `Prefer: odata.maxpagesize`. */
  defaultPageSize?: number;
}

/** An answer the fake gives instead of the real one, `times` times, to requests matching `method` and `path`. */
export interface GraphFault {
  method?: string;
  path: RegExp;
  /** HTTP status; 0 resets the connection without an answer (the service or the network failing mid-page). */
  status: number;
  /** Graph error code of the body. [TooManyRequests for 429, else 'ServiceUnavailable'] */
  code?: string;
  /** Seconds sent in `Retry-After`. */
  retryAfterSeconds?: number;
  /** [1] */
  times?: number;
}

export interface GraphRequestRecord {
  method: string;
  path: string;
  at: number;
}

export interface FakeGraph {
  /** `https://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  /** PEM of the CA clients must trust. */
  readonly ca: string;
  readonly store: MailStore;
  /** Messages given to sendMail, oldest first (the MIME decoded). */
  readonly sent: Array<{ user: string; raw: Buffer; at: number }>;
  readonly requests: GraphRequestRecord[];
  deliver(user: string, raw: Buffer | string, folder?: string): string;
  fault(fault: GraphFault): void;
  /** Requests matching `path` get no answer until `release()` (an abrupt stop in the middle of a page). */
  hold(path: RegExp): { waiting: () => number; release: () => void };
  close(): Promise<void>;
}

const BODY_LIMIT = 50 * 1024 * 1024; // bytes

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > BODY_LIMIT) reject(new Error('request body too large'));
      else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** Graph's error body: `{"error": {"code", "message"}}` (https://learn.microsoft.com/graph/errors). */
function error(res: ServerResponse, status: number, code: string, message: string, headers = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify({ error: { code, message, innerError: { date: new Date().toISOString() } } }));
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; odata.metadata=minimal' });
  res.end(JSON.stringify(body));
}

/** The message as a delta page lists it with `$select=id,receivedDateTime` (@odata.etag and id always come). */
function deltaItem(m: FakeMessage): Record<string, unknown> {
  return {
    '@odata.type': '#microsoft.graph.message',
    '@odata.etag': `W/"${m.changed}"`,
    id: m.id,
    receivedDateTime: m.receivedAt.toISOString().replace(/\.\d{3}Z$/, 'Z'),
    isRead: m.isRead,
  };
}

export async function startFakeGraph(options: FakeGraphOptions = {}): Promise<FakeGraph> {
  const certificates = options.certificates ?? makeTestCertificates();
  const store = new MailStore(new Set((options.users ?? []).map((u) => u.toLowerCase())));
  const verify = options.verifyToken ?? ((_user: string, token: string) => token !== '');
  const defaultPageSize = options.defaultPageSize ?? 10;
  const faults: Array<GraphFault & { left: number }> = [];
  const holds: Array<{ path: RegExp; waiting: Array<() => void>; released: boolean }> = [];
  const sent: FakeGraph['sent'] = [];
  const requests: GraphRequestRecord[] = [];
  let url = '';

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const target = new URL(req.url ?? '/', url);
    const method = req.method ?? 'GET';
    requests.push({ method, path: target.pathname, at: Date.now() });
    const hold = holds.find((h) => !h.released && h.path.test(target.pathname));
    if (hold) await new Promise<void>((resolve) => hold.waiting.push(resolve));
    const fault = faults.find((f) => f.left > 0 && f.path.test(target.pathname) && (!f.method || f.method === method));
    if (fault) {
      fault.left -= 1;
      if (fault.status === 0) {
        req.socket.destroy();
        return;
      }
      const code = fault.code ?? (fault.status === 429 ? 'TooManyRequests' : 'ServiceUnavailable');
      // Throttled: 429 with a suggested wait in Retry-After (https://learn.microsoft.com/graph/throttling).
      const headers = fault.retryAfterSeconds !== undefined ? { 'retry-after': String(fault.retryAfterSeconds) } : {};
      error(res, fault.status, code, `fault injected: ${code}`, headers);
      return;
    }
    const parts = target.pathname
      .split('/')
      .filter((p) => p !== '')
      .map(decodeURIComponent);
    if (parts[0] !== 'v1.0' || parts[1] !== 'users' || parts[2] === undefined) {
      error(res, 400, 'BadRequest', 'Resource not found for the segment.');
      return;
    }
    const user = parts[2];
    const token = /^Bearer (.+)$/i.exec(req.headers.authorization ?? '')?.[1] ?? '';
    // https://learn.microsoft.com/graph/resolve-auth-errors: 401 for a missing or bad token.
    if (!verify(user, token)) {
      error(res, 401, 'InvalidAuthenticationToken', 'Access token is empty, expired or not valid for this mailbox.');
      return;
    }
    if (!store.hasUser(user)) {
      error(res, 404, 'ErrorInvalidUser', `The requested user '${user}' is invalid.`);
      return;
    }
    const rest = parts.slice(3);
    // POST /users/{id}/sendMail (https://learn.microsoft.com/graph/api/user-sendmail): MIME as
    // base64 with Content-Type text/plain, 202 Accepted with no body; bad base64 is 400.
    if (method === 'POST' && rest.length === 1 && rest[0]?.toLowerCase() === 'sendmail') {
      const body = (await readBody(req)).toString('latin1').trim();
      if (!/^text\/plain\b/i.test(req.headers['content-type'] ?? '')) {
        error(res, 400, 'ErrorInvalidRequest', 'JSON sendMail is not supported by the fake; send MIME as text/plain.');
        return;
      }
      if (body === '' || !/^[A-Za-z0-9+/=\r\n]+$/.test(body)) {
        error(res, 400, 'ErrorMimeContentInvalidBase64String', 'Invalid base64 string for MIME content.');
        return;
      }
      const raw = Buffer.from(body, 'base64');
      sent.push({ user, raw, at: Date.now() });
      store.deliver(user, raw, 'sentitems');
      for (const to of new Set(headerAddresses(raw))) if (store.hasUser(to)) store.deliver(to, raw, 'inbox');
      res.writeHead(202);
      res.end();
      return;
    }
    // GET /users/{id}/mailFolders/{id}/messages/delta (https://learn.microsoft.com/graph/api/message-delta).
    if (method === 'GET' && rest[0] === 'mailFolders' && rest[2] === 'messages' && rest[3] === 'delta') {
      deltaPage(req, res, target, user, rest[1] as string);
      return;
    }
    if (method === 'GET' && rest[0] === 'mailFolders' && rest.length === 2) {
      const folder = (rest[1] as string).toLowerCase();
      if (!WELL_KNOWN_FOLDERS.includes(folder)) {
        error(res, 404, 'ErrorItemNotFound', 'The specified folder could not be found in the store.');
        return;
      }
      json(res, 200, { id: folder, displayName: folder });
      return;
    }
    if (rest[0] !== 'messages' || rest[1] === undefined) {
      error(res, 400, 'BadRequest', 'Resource not found for the segment.');
      return;
    }
    const message = store.get(user, rest[1]);
    if (!message) {
      error(res, 404, 'ErrorItemNotFound', 'The specified object was not found in the store.');
      return;
    }
    // GET …/messages/{id}/$value: the MIME source (https://learn.microsoft.com/graph/api/message-get, "Get MIME content").
    if (method === 'GET' && rest[2] === '$value' && rest.length === 3) {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(message.raw);
      return;
    }
    // PATCH …/messages/{id} {"isRead"} (https://learn.microsoft.com/graph/api/message-update): 200 with the message.
    if (method === 'PATCH' && rest.length === 2) {
      const body = JSON.parse((await readBody(req)).toString('utf8') || '{}') as { isRead?: unknown };
      if (typeof body.isRead === 'boolean') store.markRead(message, body.isRead);
      json(res, 200, deltaItem(message));
      return;
    }
    // POST …/messages/{id}/move {"destinationId"} (https://learn.microsoft.com/graph/api/message-move): 201.
    if (method === 'POST' && rest[2] === 'move' && rest.length === 3) {
      const body = JSON.parse((await readBody(req)).toString('utf8') || '{}') as { destinationId?: unknown };
      const folder = typeof body.destinationId === 'string' ? body.destinationId.toLowerCase() : '';
      if (!WELL_KNOWN_FOLDERS.includes(folder)) {
        error(res, 400, 'ErrorInvalidIdMalformed', 'Id is malformed.');
        return;
      }
      store.move(message, folder);
      json(res, 201, deltaItem(message));
      return;
    }
    // DELETE …/messages/{id} (https://learn.microsoft.com/graph/api/message-delete): 204.
    if (method === 'DELETE' && rest.length === 2) {
      store.delete(message);
      res.writeHead(204);
      res.end();
      return;
    }
    error(res, 405, 'BadRequest', 'The method is not allowed here.');
  };

  const deltaPage = (req: IncomingMessage, res: ServerResponse, target: URL, user: string, folder: string): void => {
    const skip = target.searchParams.get('$skiptoken');
    const delta = target.searchParams.get('$deltatoken');
    const token = skip ?? delta;
    let state = token === null ? store.round(user, folder, 0) : decodeState(token);
    if (token !== null && (state === null || state.g !== store.generation)) {
      // An unknown or expired state token: 410 Gone, the client starts a full synchronisation
      // over (https://learn.microsoft.com/graph/delta-query-overview, "Synchronization reset").
      error(res, 410, 'SyncStateNotFound', 'The sync state generation is not found. Data must be synchronized again.');
      return;
    }
    if (state === null) return;
    // A delta token starts the next round from where the last one ended.
    if (delta !== null) state = store.round(user, folder, state.upTo);
    const preferred = /odata\.maxpagesize=(\d+)/i.exec(String(req.headers.prefer ?? ''))?.[1];
    const size = Math.max(1, Math.min(1000, preferred !== undefined ? Number(preferred) : defaultPageSize));
    const page = store.page(state, size);
    const base = `${url}/v1.0/users/${encodeURIComponent(user)}/mailFolders/${encodeURIComponent(folder)}/messages/delta`;
    const value = [
      ...page.messages.map(deltaItem),
      // A message deleted or moved away: `@removed` (https://learn.microsoft.com/graph/delta-query-messages).
      ...page.removed.map((id) => ({
        '@odata.type': '#microsoft.graph.message',
        id,
        '@removed': { reason: 'deleted' },
      })),
    ];
    // Either a nextLink (more pages in this round) or a deltaLink (the round is over), never both.
    const link = page.next
      ? { '@odata.nextLink': `${base}?$skiptoken=${encodeState(page.next)}` }
      : { '@odata.deltaLink': `${base}?$deltatoken=${encodeState({ ...state, after: state.upTo })}` };
    res.writeHead(200, {
      'content-type': 'application/json; odata.metadata=minimal',
      ...(preferred !== undefined && { 'preference-applied': `odata.maxpagesize=${size}` }),
    });
    res.end(JSON.stringify({ '@odata.context': `${url}/v1.0/$metadata#Collection(message)`, ...link, value }));
  };

  const server: Server = createServer({ key: certificates.key, cert: certificates.cert }, (req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) error(res, 500, 'InternalServerError', err instanceof Error ? err.message : String(err));
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  url = `https://127.0.0.1:${port}`;
  return {
    url,
    port,
    ca: certificates.ca,
    store,
    sent,
    requests,
    deliver: (user, raw, folder) => store.deliver(user, raw, folder),
    fault: (f) => faults.push({ ...f, left: f.times ?? 1 }),
    hold(path) {
      const h = { path, waiting: [] as Array<() => void>, released: false };
      holds.push(h);
      return {
        waiting: () => h.waiting.length,
        release: () => {
          h.released = true;
          for (const w of h.waiting.splice(0)) w();
        },
      };
    },
    async close() {
      for (const h of holds) {
        h.released = true;
        for (const w of h.waiting.splice(0)) w();
      }
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
