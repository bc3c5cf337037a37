import { Type } from '@sinclair/typebox';
import { MailroomError } from '../../shared/errors.js';
import { FeedItemView, MessageDetailView, MessageSummaryView } from '../../inbound/views.js';
import { DestinationParams, ServerParams } from '../params.js';
import { principalOf, stillAuthorized, type RouteDef } from '../route.js';
import { SharedChecks } from '../shared-checks.js';
import { sendAsDownload } from '../download-headers.js';

/** Whether a token still stands at the end of an empty wait: one read per token and second. */
const emptyWaitChecks = new SharedChecks(1_000);

const tags = ['inbound messages'];
const base = '/api/v1/tenants/:tenantId/destinations/:destinationId/messages';
const Id = Type.String({ format: 'uuid' });
const MessageParams = Type.Object({ tenantId: Id, destinationId: Id, messageId: Id }, { additionalProperties: false });
type MessageParams = { tenantId: string; destinationId: string; messageId: string };
const AttachmentParams = Type.Object(
  { tenantId: Id, destinationId: Id, messageId: Id, index: Type.Integer({ minimum: 0 }) },
  { additionalProperties: false },
);
const Agent = Type.Object({ agent: Type.String({ minLength: 1, maxLength: 200 }) }, { additionalProperties: false });

export const messageRoutes: RouteDef[] = [
  {
    method: 'GET',
    url: base,
    access: 'tenant',
    summary:
      "A destination's messages in arrival order after a cursor (`after` = last `seq` seen); " +
      '`wait` long-polls up to that many seconds when nothing is new. With `order=desc`, the newest ' +
      'first, below the cursor `before` (`next` is the cursor of the next, older page).',
    tags,
    errors: ['DESTINATION_NOT_FOUND', 'TOO_MANY_WAITS'],
    schema: {
      params: DestinationParams,
      querystring: Type.Object(
        {
          after: Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER })),
          before: Type.Optional(Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER })),
          order: Type.Optional(Type.Union([Type.Literal('asc'), Type.Literal('desc')])),
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500 })),
          wait: Type.Optional(Type.Integer({ minimum: 0, maximum: 60 })),
        },
        { additionalProperties: false },
      ),
      response: { 200: Type.Object({ messages: Type.Array(FeedItemView), next: Type.Integer() }) },
    },
    handler: async (req, reply, { accounts, inbound, waits }) => {
      const p = req.params as DestinationParams;
      const q = req.query as { after?: number; before?: number; order?: 'asc' | 'desc'; limit?: number; wait?: number };
      if (q.order === 'desc') {
        const misplaced = q.after !== undefined ? 'after' : q.wait !== undefined ? 'wait' : null;
        if (misplaced) {
          throw new MailroomError(
            'VALIDATION_FAILED',
            `${misplaced} applies to arrival order only; with order=desc, page with before`,
            { field: misplaced },
          );
        }
        return inbound.feed.listNewest(p.tenantId, p.destinationId, q.before ?? null, q.limit ?? 100);
      }
      if (q.before !== undefined) {
        throw new MailroomError('VALIDATION_FAILED', 'before needs order=desc (arrival order pages with after)', {
          field: 'before',
        });
      }
      const waitMs = (q.wait ?? 0) * 1000;
      if (waitMs === 0) return inbound.feed.list(p.tenantId, p.destinationId, q.after ?? 0, q.limit ?? 100, 0);
      const release = waits.take(principalOf(req), p.tenantId);
      // A client that hangs up ends its wait at once: its slot is free for the next request.
      const hungUp = new AbortController();
      const onClose = (): void => {
        if (!reply.raw.writableFinished) hungUp.abort();
      };
      reply.raw.once('close', onClose);
      try {
        const found = await inbound.feed.list(
          p.tenantId,
          p.destinationId,
          q.after ?? 0,
          q.limit ?? 100,
          waitMs,
          hungUp.signal,
        );
        // What arrived while it waited goes only to a token that still stands (checked afresh); a
        // wait that ends empty answers 401 too once the token is revoked (one check shared by the
        // token's waits ending within a second: nothing is handed out on it).
        const standing =
          found.messages.length > 0
            ? await stillAuthorized(req, accounts)
            : await emptyWaitChecks.check(principalOf(req).tokenId ?? 'config', () => stillAuthorized(req, accounts));
        if (!standing) throw new MailroomError('UNAUTHORIZED', 'the API token was revoked while the request waited');
        return found;
      } finally {
        reply.raw.off('close', onClose);
        release();
      }
    },
  },
  {
    method: 'GET',
    url: `${base}/:messageId`,
    access: 'tenant',
    summary: 'One message: headers, text, HTML, attachment list, classification, conversation.',
    tags,
    errors: ['DESTINATION_NOT_FOUND', 'MESSAGE_NOT_FOUND'],
    schema: { params: MessageParams, response: { 200: MessageDetailView } },
    handler: async (req, _reply, { inbound }) => {
      const p = req.params as MessageParams;
      return inbound.feed.get(p.tenantId, p.destinationId, p.messageId);
    },
  },
  {
    method: 'GET',
    url: `${base}/:messageId/raw`,
    access: 'tenant',
    summary: 'The message as received (RFC 822).',
    tags,
    errors: ['DESTINATION_NOT_FOUND', 'MESSAGE_NOT_FOUND'],
    produces: 'message/rfc822',
    schema: { params: MessageParams, response: { 200: Type.Any({ description: 'message/rfc822' }) } },
    handler: async (req, reply, { inbound }) => {
      const p = req.params as MessageParams;
      const raw = await inbound.feed.raw(p.tenantId, p.destinationId, p.messageId);
      sendAsDownload(reply, 'message/rfc822', `${p.messageId}.eml`);
      return raw;
    },
  },
  {
    method: 'GET',
    url: `${base}/:messageId/attachments/:index`,
    access: 'tenant',
    summary: 'One attachment of the message, by its index in the attachment list.',
    tags,
    errors: ['DESTINATION_NOT_FOUND', 'MESSAGE_NOT_FOUND'],
    produces: 'application/octet-stream',
    schema: { params: AttachmentParams, response: { 200: Type.Any({ description: 'the attachment' }) } },
    handler: async (req, reply, { inbound }) => {
      const p = req.params as MessageParams & { index: number };
      const found = await inbound.feed.attachment(p.tenantId, p.destinationId, p.messageId, p.index);
      sendAsDownload(reply, found.contentType, found.filename ?? `attachment-${p.index}`);
      return found.content;
    },
  },
  {
    method: 'POST',
    url: `${base}/:messageId/claim`,
    access: 'tenant',
    summary: 'Claim the message for an agent system; another claimant gets 409 ALREADY_CLAIMED.',
    tags,
    errors: ['DESTINATION_NOT_FOUND', 'MESSAGE_NOT_FOUND', 'ALREADY_CLAIMED'],
    schema: { params: MessageParams, body: Agent, response: { 200: FeedItemView } },
    handler: async (req, _reply, { inbound }) => {
      const p = req.params as MessageParams;
      return inbound.feed.claim(p.tenantId, p.destinationId, p.messageId, (req.body as { agent: string }).agent);
    },
  },
  {
    method: 'POST',
    url: `${base}/:messageId/ack`,
    access: 'tenant',
    summary:
      'Acknowledge that the message was taken over. With `agent`, refused (409 ALREADY_CLAIMED) when another agent claimed it.',
    tags,
    errors: ['DESTINATION_NOT_FOUND', 'MESSAGE_NOT_FOUND', 'ALREADY_CLAIMED'],
    schema: {
      params: MessageParams,
      body: Type.Partial(Agent, { additionalProperties: false }),
      response: { 200: FeedItemView },
    },
    handler: async (req, _reply, { inbound }) => {
      const p = req.params as MessageParams;
      const body = req.body as { agent?: string } | undefined;
      return inbound.feed.ack(p.tenantId, p.destinationId, p.messageId, body?.agent);
    },
  },
  {
    method: 'GET',
    url: '/api/v1/tenants/:tenantId/servers/:serverId/messages',
    access: 'tenant',
    summary: "A server's quarantined, unrouted or duplicate messages (newest first).",
    tags,
    errors: ['SERVER_NOT_FOUND'],
    schema: {
      params: ServerParams,
      querystring: Type.Object(
        {
          status: Type.Union([Type.Literal('quarantined'), Type.Literal('unrouted'), Type.Literal('duplicate')]),
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500 })),
        },
        { additionalProperties: false },
      ),
      response: { 200: Type.Object({ messages: Type.Array(MessageSummaryView) }) },
    },
    handler: async (req, _reply, { inbound }) => {
      const p = req.params as ServerParams;
      const q = req.query as { status: string; limit?: number };
      return { messages: await inbound.feed.byStatus(p.tenantId, p.serverId, q.status, q.limit ?? 100) };
    },
  },
  {
    method: 'GET',
    url: '/api/v1/tenants/:tenantId/servers/:serverId/status',
    access: 'tenant',
    summary:
      "The server's connection state, last error in plain words, last contact and UID progress; which instance watches it.",
    tags: ['e-mail servers'],
    errors: ['SERVER_NOT_FOUND'],
    schema: {
      params: ServerParams,
      response: {
        200: Type.Object({
          /** With several instances, the one watching this mailbox (`inbound` describes this instance's view). */
          watchedBy: Type.Union([
            Type.Object({ instanceId: Type.String(), thisInstance: Type.Boolean() }),
            Type.Null(),
          ]),
          /** How each side's connection is encrypted (`tls` of the settings). */
          tls: Type.Object({ imap: Type.String(), smtp: Type.String() }),
          /** The settings' warnings (a side sending in plain text), as in the server's view. */
          warnings: Type.Array(Type.String()),
          inbound: Type.Object({
            state: Type.String(),
            lastError: Type.Union([Type.String(), Type.Null()]),
            lastErrorAt: Type.Union([Type.String(), Type.Null()]),
            lastProblemEndedAt: Type.Union([Type.String(), Type.Null()]),
            /** How new mail is learned: `idle` (pushed, plus a safety sync every `pollIntervalMs`) or `poll`. */
            newMail: Type.Object({
              by: Type.Union([Type.Literal('idle'), Type.Literal('poll'), Type.Null()]),
              pollIntervalMs: Type.Union([Type.Integer(), Type.Null()]),
            }),
            lastContactAt: Type.Union([Type.String(), Type.Null()]),
            lastUid: Type.Record(Type.String(), Type.Integer()),
            /** Folders of `imap.folders` not read, with why (Gmail's All Mail). */
            notWatched: Type.Record(Type.String(), Type.String()),
            idleSupported: Type.Union([Type.Boolean(), Type.Null()]),
            reconnects: Type.Integer(),
            nextAttemptAt: Type.Union([Type.String(), Type.Null()]),
          }),
          outbound: Type.Object({
            queue: Type.Union([
              Type.Object({
                state: Type.String(),
                depth: Type.Integer(),
                oldestQueuedAt: Type.Union([Type.String(), Type.Null()]),
                lastReply: Type.Union([Type.String(), Type.Null()]),
                lastErrorAt: Type.Union([Type.String(), Type.Null()]),
                resumeAt: Type.Union([Type.String(), Type.Null()]),
                lastProblemEndedAt: Type.Union([Type.String(), Type.Null()]),
                rateLimitedUntil: Type.Union([Type.String(), Type.Null()]),
                /**
                 * Recipients the server refused while it took a message for the others, since this
                 * engine started: for good (the message is partially sent) and for now (tried again),
                 * with the last one.
                 */
                recipientRefusals: Type.Object({
                  permanent: Type.Integer(),
                  temporary: Type.Integer(),
                  last: Type.Union([
                    Type.Object({
                      outboundId: Type.String(),
                      address: Type.String(),
                      reply: Type.String(),
                      responseCode: Type.Union([Type.Integer(), Type.Null()]),
                      at: Type.String(),
                    }),
                    Type.Null(),
                  ]),
                }),
              }),
              Type.Null(),
            ]),
            heartbeat: Type.Union([
              Type.Object({
                health: Type.String(),
                lastHeartbeatAt: Type.Union([Type.String(), Type.Null()]),
                lastResult: Type.Union([Type.String(), Type.Null()]),
                roundTripMs: Type.Union([Type.Integer(), Type.Null()]),
              }),
              Type.Null(),
            ]),
          }),
        }),
      },
    },
    handler: async (req, _reply, { accounts, inbound, outbound, operations }) => {
      const p = req.params as ServerParams;
      const server = await accounts.servers.get(p.tenantId, p.serverId);
      const watchedBy = operations ? await operations.watcherOf(p.serverId) : null;
      const seen = inbound.status(p.serverId);
      // An enabled server this instance does not watch yet (just added or enabled; its watcher
      // starts with the next reconcile) is connecting, not disabled.
      const starting = server.enabled && seen.state === 'disabled' && (watchedBy === null || watchedBy.thisInstance);
      return {
        watchedBy,
        tls: { imap: server.imap.tls, smtp: server.smtp.tls },
        warnings: server.warnings,
        inbound: starting ? { ...seen, state: 'connecting' } : seen,
        outbound: outbound.status(p.serverId),
      };
    },
  },
];
