import { Type } from '@sinclair/typebox';
import { MessageDetailView } from '../../inbound/views.js';
import { sendAsDownload } from '../download-headers.js';
import type { RouteDef } from '../route.js';

/**
 * A tenant's inbound message by its id alone, whatever became of it: the operator's console opens
 * a trace hit here (an unrouted or quarantined message has no destination to read it through),
 * and shows its inline (`cid:`) images and attachments from here. Agents' systems read through
 * their destination (messages.ts).
 */
const tags = ['inbound messages'];
const Id = Type.String({ format: 'uuid' });
const strict = { additionalProperties: false } as const;
const base = '/api/v1/tenants/:tenantId/messages/:messageId';
type Params = { tenantId: string; messageId: string };

export const tenantMessageRoutes: RouteDef[] = [
  {
    method: 'GET',
    url: base,
    access: 'tenant',
    summary:
      'One inbound message of the tenant, routed or held: headers, text, HTML, attachment list (with each ' +
      "part's Content-ID), classification, status and quarantine reason.",
    tags,
    errors: ['MESSAGE_NOT_FOUND'],
    schema: { params: Type.Object({ tenantId: Id, messageId: Id }, strict), response: { 200: MessageDetailView } },
    handler: async (req, _reply, { inbound }) => {
      const p = req.params as Params;
      return inbound.feed.getInTenant(p.tenantId, p.messageId);
    },
  },
  {
    method: 'GET',
    url: `${base}/attachments/:index`,
    access: 'tenant',
    summary: 'One attachment or inline part of an inbound message of the tenant, by its index in the attachment list.',
    tags,
    errors: ['MESSAGE_NOT_FOUND'],
    produces: 'application/octet-stream',
    schema: {
      params: Type.Object(
        { tenantId: Id, messageId: Id, index: Type.Integer({ minimum: 0, maximum: 10_000 }) },
        strict,
      ),
      response: { 200: Type.Any({ description: 'the attachment' }) },
    },
    handler: async (req, reply, { inbound }) => {
      const p = req.params as Params & { index: number };
      const found = await inbound.feed.attachmentInTenant(p.tenantId, p.messageId, p.index);
      // Always a download, never rendered by the browser on the engine's origin.
      sendAsDownload(reply, found.contentType, found.filename ?? `attachment-${p.index}`);
      return found.content;
    },
  },
];
