import { Type } from '@sinclair/typebox';
import { MailroomError } from '../../shared/errors.js';
import { DestinationParams } from '../params.js';
import { principalOf, stillAuthorized, type RouteDef } from '../route.js';
import { SharedChecks } from '../shared-checks.js';

/** [15000] ms between two keep-alive comments of an idle stream (proxies close silent connections). */
const KEEP_ALIVE_MS = 15_000;

/**
 * Keep-alive re-authorisations, one answer shared by the streams of a token and destination for
 * half a keep-alive period. Each batch handed out is still authorised afresh.
 */
const keepAliveChecks = new SharedChecks(KEEP_ALIVE_MS / 2);

/** [3000] ms a browser's EventSource waits before it reconnects (the stream's `retry:`). */
const RECONNECT_MS = 3_000;

/** The header a reconnecting client sends (checked by the handler, which names it when it is wrong). */
const LastEventIdHeader = Type.Object({
  'last-event-id': Type.Optional(
    Type.String({
      pattern: '^[0-9]{1,15}$',
      description: 'the seq of the last event received: the stream continues after it (instead of `after`)',
    }),
  ),
});

export const eventRoutes: RouteDef[] = [
  {
    method: 'GET',
    url: '/api/v1/tenants/:tenantId/destinations/:destinationId/events',
    access: 'tenant',
    summary:
      "Server-sent events (text/event-stream): the destination's messages in arrival order, then each as it " +
      'is routed, as `event: message.routed` with `id: <seq>` and the feed item as `data`; after the cursor ' +
      '`after`, or after the `Last-Event-ID` header when a client reconnects. A comment every 15 s keeps ' +
      'an idle stream open. Counts as a wait of its token (429 TOO_MANY_WAITS beyond the limit).',
    tags: ['inbound messages'],
    errors: ['DESTINATION_NOT_FOUND', 'TOO_MANY_WAITS'],
    produces: 'text/event-stream',
    headers: LastEventIdHeader,
    schema: {
      params: DestinationParams,
      querystring: Type.Object(
        { after: Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER })) },
        { additionalProperties: false },
      ),
      response: { 200: Type.String({ description: 'text/event-stream' }) },
    },
    handler: async (req, reply, { accounts, inbound, waits }) => {
      const p = req.params as DestinationParams;
      const q = req.query as { after?: number };
      const header = req.headers['last-event-id'];
      let after = q.after ?? 0;
      if (header !== undefined) {
        if (
          typeof header !== 'string' ||
          !/^\d{1,15}$/.test(header.trim()) ||
          Number(header) > Number.MAX_SAFE_INTEGER
        ) {
          throw new MailroomError('VALIDATION_FAILED', 'Last-Event-ID must be the seq of the last event received', {
            field: 'Last-Event-ID',
          });
        }
        after = Number(header.trim());
      }
      const release = waits.take(principalOf(req), p.tenantId);
      const abort = new AbortController();
      let keepAlive: NodeJS.Timeout | undefined;
      try {
        // A destination that does not exist answers 404 as JSON, before the stream begins.
        const batches = await inbound.feed.openStream(p.tenantId, p.destinationId, after, abort.signal);
        reply.hijack();
        const res = reply.raw;
        req.raw.once('close', () => abort.abort());
        res.once('close', () => abort.abort());
        res.writeHead(200, {
          'content-type': 'text/event-stream; charset=utf-8',
          'cache-control': 'no-cache, no-transform',
          'x-accel-buffering': 'no',
        });
        res.write(`retry: ${RECONNECT_MS}\n: mailroom events of destination ${p.destinationId}\n\n`);
        // A token revoked, or a destination deleted, ends the stream (checked with each batch and
        // with each keep-alive).
        const allowed = async (): Promise<boolean> =>
          (await stillAuthorized(req, accounts)) && (await inbound.feed.stillVisible(p.tenantId, p.destinationId));
        const principal = principalOf(req);
        keepAlive = setInterval(() => {
          res.write(': keep-alive\n\n');
          // Shared by the streams of one token and destination (one read for all of them).
          keepAliveChecks.check(`${principal.tokenId ?? 'config'}:${p.destinationId}`, allowed).then(
            (ok) => {
              if (!ok) abort.abort();
            },
            () => undefined, // the database is away: the next batch's check decides
          );
        }, KEEP_ALIVE_MS);
        try {
          for await (const batch of batches) {
            if (!(await allowed())) {
              res.write(
                `event: error\ndata: ${JSON.stringify({ message: 'the API token or the destination is gone' })}\n\n`,
              );
              break;
            }
            let chunk = '';
            for (const item of batch) {
              chunk += `id: ${item.seq}\nevent: message.routed\ndata: ${JSON.stringify(item)}\n\n`;
            }
            if (!res.write(chunk) && !abort.signal.aborted) {
              await new Promise<void>((resolve) => {
                res.once('drain', resolve);
                abort.signal.addEventListener('abort', () => resolve(), { once: true });
              });
            }
          }
        } catch (err) {
          // The database went away mid-stream: say so; the client reconnects with Last-Event-ID.
          req.log.warn({ err, destinationId: p.destinationId }, 'event stream ended by an error');
          if (!res.writableEnded) {
            res.write(
              `event: error\ndata: ${JSON.stringify({ message: 'the stream was interrupted; reconnect' })}\n\n`,
            );
          }
        }
        res.end();
      } finally {
        clearInterval(keepAlive);
        abort.abort();
        release();
      }
    },
  },
];
