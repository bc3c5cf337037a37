import { Type } from '@sinclair/typebox';
import type { ActionOutcome } from '../../outbound/mail-actions.js';
import {
  DeadLetterView,
  OutboundView,
  RequestedView,
  RequestView,
  RetiredView,
  SendInput,
} from '../../outbound/schemas.js';
import { DestinationParams, NoContent, ServerParams, TenantParams } from '../params.js';
import type { RouteDef } from '../route.js';

const tags = ['outbound'];
const Id = Type.String({ format: 'uuid' });
const strict = { additionalProperties: false } as const;
const OutboundParams = Type.Object({ tenantId: Id, destinationId: Id, outboundId: Id }, strict);
const DeadParams = Type.Object({ tenantId: Id, serverId: Id, outboundId: Id }, strict);
const TenantDeadParams = Type.Object({ tenantId: Id, outboundId: Id }, strict);
const DeadLetterList = Type.Object({ deadLetters: Type.Array(DeadLetterView) });
const RequestParams = Type.Object({ tenantId: Id, requestId: Type.String({ pattern: '^[0-9]{1,18}$' }) }, strict);
const RequestList = Type.Object({ requests: Type.Array(RequestView) });

/**
 * [26214400] largest body of a send, bytes (25 MiB, as MAILROOM_MAX_MESSAGE_BYTES's default):
 * the schema takes `text` of 5,000,000 characters, `html` of 10,000,000 and attachments of
 * maxAttachmentBytes (10 MiB, 13.4 MiB as base64), which the API's 1 MiB would refuse with 413
 * (issue 24 review). Each maximum fits; all of them at once do not, and the 413 says so.
 */
export const SEND_BODY_LIMIT = 26_214_400;

export const outboundRoutes: RouteDef[] = [
  {
    method: 'POST',
    url: '/api/v1/tenants/:tenantId/destinations/:destinationId/outbound',
    access: 'tenant',
    summary:
      'Send a reply or notification from the destination. Answers 202 once the message is safe in the disk spool; ' +
      'delivery follows in order under the account’s rate limit. The request body may take up to 25 MiB ' +
      '(text, html and base64 attachments together; larger: 413 PAYLOAD_TOO_LARGE).',
    bodyLimit: SEND_BODY_LIMIT,
    tags,
    errors: [
      'DESTINATION_NOT_FOUND',
      'SERVER_NOT_FOUND',
      'NOT_AVAILABLE_FOR_OUTGOING',
      'MESSAGE_NOT_FOUND',
      'TEMPLATE_NOT_FOUND',
      'TEMPLATE_UNAVAILABLE',
      'SPOOL_FULL',
      'SPOOL_UNAVAILABLE',
    ],
    schema: { params: DestinationParams, body: SendInput, response: { 202: OutboundView } },
    handler: async (req, reply, { outbound }) => {
      const p = req.params as DestinationParams;
      reply.code(202);
      return outbound.accept(p.tenantId, p.destinationId, req.body);
    },
  },
  {
    method: 'GET',
    url: '/api/v1/tenants/:tenantId/destinations/:destinationId/outbound/:outboundId',
    access: 'tenant',
    summary:
      'Status of an outgoing message: queued, sending, sent, deferred or failed, with attempts and the last SMTP reply.',
    tags,
    errors: ['DESTINATION_NOT_FOUND', 'OUTBOUND_NOT_FOUND'],
    schema: { params: OutboundParams, response: { 200: OutboundView } },
    handler: async (req, _reply, { outbound }) => {
      const p = req.params as { tenantId: string; destinationId: string; outboundId: string };
      return outbound.get(p.tenantId, p.destinationId, p.outboundId);
    },
  },
  {
    method: 'POST',
    url: '/api/v1/tenants/:tenantId/destinations/:destinationId/outbound/:outboundId/cancel',
    access: 'tenant',
    summary:
      'Cancel a message still waiting to be sent (queued or deferred): it becomes a dead letter (status failed), ' +
      'which can be re-queued. 200 when done; 202 when the instance holding its spool file will do it (within seconds).',
    tags,
    errors: ['DESTINATION_NOT_FOUND', 'OUTBOUND_NOT_FOUND', 'OUTBOUND_NOT_WAITING', 'SPOOL_UNAVAILABLE'],
    schema: {
      params: OutboundParams,
      body: Type.Object({}, strict),
      response: { 200: OutboundView, 202: RequestedView },
    },
    handler: async (req, reply, { outbound }) => {
      const p = req.params as { tenantId: string; destinationId: string; outboundId: string };
      const outcome = await outbound.cancel(p.tenantId, p.destinationId, p.outboundId);
      if (outcome.state === 'done') return outbound.view(outcome.row);
      return requested(reply, p, 'cancel', outcome);
    },
  },
  {
    method: 'GET',
    url: '/api/v1/tenants/:tenantId/servers/:serverId/dead-letters',
    access: 'tenant',
    summary:
      'Messages the server refused for good (5xx), that outlived their retries, or that were cancelled; ' +
      'from every instance.',
    tags,
    errors: ['SERVER_NOT_FOUND'],
    schema: { params: ServerParams, response: { 200: DeadLetterList } },
    handler: async (req, _reply, { accounts, outbound }) => {
      const p = req.params as ServerParams;
      await accounts.servers.get(p.tenantId, p.serverId);
      return { deadLetters: await outbound.deadLetters(p.tenantId, p.serverId) };
    },
  },
  {
    method: 'POST',
    url: '/api/v1/tenants/:tenantId/servers/:serverId/dead-letters/:outboundId/requeue',
    access: 'tenant',
    summary:
      'Put a dead letter back at the end of the queue. 204 when done; 202 when the instance holding its file will do it.',
    tags,
    errors: ['SERVER_NOT_FOUND', 'OUTBOUND_NOT_FOUND', 'SPOOL_FULL', 'SPOOL_UNAVAILABLE'],
    schema: { params: DeadParams, body: Type.Object({}, strict), response: { 202: RequestedView, 204: NoContent } },
    handler: async (req, reply, { accounts, outbound }) => {
      const p = req.params as { tenantId: string; serverId: string; outboundId: string };
      await accounts.servers.get(p.tenantId, p.serverId);
      return answer(reply, p, 'requeue', await outbound.requeueDeadLetter({ ...p, id: p.outboundId }));
    },
  },
  {
    method: 'DELETE',
    url: '/api/v1/tenants/:tenantId/servers/:serverId/dead-letters/:outboundId',
    access: 'tenant',
    summary: 'Delete a dead letter. 204 when done; 202 when the instance holding its file will do it.',
    tags,
    errors: ['SERVER_NOT_FOUND', 'OUTBOUND_NOT_FOUND', 'SPOOL_UNAVAILABLE'],
    schema: { params: DeadParams, response: { 202: RequestedView, 204: NoContent } },
    handler: async (req, reply, { accounts, outbound }) => {
      const p = req.params as { tenantId: string; serverId: string; outboundId: string };
      await accounts.servers.get(p.tenantId, p.serverId);
      return answer(reply, p, 'delete', await outbound.deleteDeadLetter({ ...p, id: p.outboundId }));
    },
  },
  {
    method: 'GET',
    url: '/api/v1/tenants/:tenantId/outbound-requests/:requestId',
    access: 'tenant',
    summary:
      'A cancel, re-queue or delete left for the instance holding the message (a 202 answer): requested, ' +
      'in-progress, done, refused with why, or withdrawn.',
    tags,
    errors: ['OUTBOUND_NOT_FOUND'],
    schema: {
      params: RequestParams,
      response: { 200: RequestView },
    },
    handler: async (req, _reply, { outbound }) => {
      const p = req.params as { tenantId: string; requestId: string };
      return outbound.request(p.tenantId, p.requestId);
    },
  },
  {
    method: 'GET',
    url: '/api/v1/tenants/:tenantId/outbound-requests',
    access: 'tenant',
    summary:
      'Requests left for the instances holding messages, newest first: those still waiting (default), or ' +
      'with ?state=all also those settled in the last 7 days; of one server’s messages with ?serverId=. ' +
      'Each says whether its instance runs now.',
    tags,
    schema: {
      params: TenantParams,
      querystring: Type.Object(
        {
          state: Type.Optional(Type.Union([Type.Literal('waiting'), Type.Literal('all')])),
          serverId: Type.Optional(Id),
        },
        strict,
      ),
      response: { 200: RequestList },
    },
    handler: async (req, _reply, { accounts, outbound }) => {
      const p = req.params as TenantParams;
      const q = req.query as { state?: 'waiting' | 'all'; serverId?: string };
      await accounts.tenants.get(p.tenantId);
      const waitingOnly = q.state !== 'all';
      return {
        requests: await outbound.requests(
          p.tenantId,
          q.serverId ? { waitingOnly, serverId: q.serverId } : { waitingOnly },
        ),
      };
    },
  },
  {
    method: 'DELETE',
    url: '/api/v1/tenants/:tenantId/outbound-requests/:requestId',
    access: 'tenant',
    summary:
      'Withdraw a request its instance has not taken up yet (for an instance that is not coming back): it is ' +
      'never carried out. 409 while a running instance carries it out, or when it is settled.',
    tags,
    errors: ['OUTBOUND_NOT_FOUND', 'OUTBOUND_REQUEST_NOT_WAITING'],
    schema: { params: RequestParams, response: { 200: RequestView } },
    handler: async (req, _reply, { outbound }) => {
      const p = req.params as { tenantId: string; requestId: string };
      return outbound.withdrawRequest(p.tenantId, p.requestId);
    },
  },
  {
    method: 'POST',
    url: '/api/v1/cluster/instances/:instanceId/retire',
    access: 'admin',
    summary:
      'Give up the spool of an engine instance that is gone for good (its machine and disk): its messages still ' +
      'waiting become failed, its dead letters are no longer listed, requests waiting for it are withdrawn. ' +
      '409 INSTANCE_RUNNING while it runs. Should it start again, it sets its spool aside as dead letters, unsent.',
    tags: ['operations'],
    errors: ['INSTANCE_RUNNING'],
    schema: {
      params: Type.Object({ instanceId: Type.String({ minLength: 1, maxLength: 255 }) }, strict),
      body: Type.Object({}, strict),
      response: { 200: RetiredView },
    },
    handler: async (req, _reply, { outbound }) => {
      const { instanceId } = req.params as { instanceId: string };
      return outbound.retireInstance(instanceId);
    },
  },
  {
    method: 'GET',
    url: '/api/v1/tenants/:tenantId/dead-letters',
    access: 'tenant',
    summary:
      'Dead letters of every server of the tenant, deleted servers included (optionally of one server: ?serverId=), ' +
      'from every instance.',
    tags,
    schema: {
      params: TenantParams,
      querystring: Type.Object({ serverId: Type.Optional(Id) }, strict),
      response: { 200: DeadLetterList },
    },
    handler: async (req, _reply, { accounts, outbound }) => {
      const p = req.params as TenantParams;
      const q = req.query as { serverId?: string };
      await accounts.tenants.get(p.tenantId);
      return { deadLetters: await outbound.deadLetters(p.tenantId, q.serverId) };
    },
  },
  {
    method: 'DELETE',
    url: '/api/v1/tenants/:tenantId/dead-letters/:outboundId',
    access: 'tenant',
    summary:
      'Delete a dead letter of any server of the tenant, a deleted one too. 204 when done; 202 when the instance ' +
      'holding its file will do it.',
    tags,
    errors: ['OUTBOUND_NOT_FOUND', 'SPOOL_UNAVAILABLE'],
    schema: { params: TenantDeadParams, response: { 202: RequestedView, 204: NoContent } },
    handler: async (req, reply, { outbound }) => {
      const p = req.params as { tenantId: string; outboundId: string };
      return answer(reply, p, 'delete', await outbound.deleteDeadLetter({ ...p, id: p.outboundId }));
    },
  },
];

/** A reply as the helpers below use it. */
interface Reply {
  code(status: number): unknown;
  header(name: string, value: string): unknown;
}

/** 204 when the action was carried out here; else 202 with the request, its address in `Location`. */
function answer(
  reply: Reply,
  target: { tenantId: string; outboundId: string },
  action: string,
  outcome: ActionOutcome,
): RequestedView | null {
  if (outcome.state === 'done') {
    reply.code(204);
    return null;
  }
  return requested(reply, target, action, outcome);
}

/** The 202 answer of an action left for another instance. */
function requested(
  reply: Reply,
  target: { tenantId: string; outboundId: string },
  action: string,
  outcome: { requestId: string; instanceId: string; holderRunning: boolean },
): RequestedView {
  const { requestId, instanceId, holderRunning } = outcome;
  reply.code(202);
  reply.header('location', `/api/v1/tenants/${target.tenantId}/outbound-requests/${requestId}`);
  return { id: target.outboundId, state: 'requested', action, requestId, instanceId, holderRunning };
}
