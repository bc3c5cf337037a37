import { WebhookStatusView, WebhookTestView } from '../../inbound/webhooks/views.js';
import { MailroomError } from '../../shared/errors.js';
import { DestinationParams } from '../params.js';
import type { RouteContext, RouteDef } from '../route.js';

const tags = ['webhooks'];
const base = '/api/v1/tenants/:tenantId/destinations/:destinationId/webhook';

function webhooksOf(ctx: RouteContext): NonNullable<RouteContext['webhooks']> {
  if (!ctx.webhooks) throw new MailroomError('UNAVAILABLE', 'webhooks are not running in this engine');
  return ctx.webhooks;
}

export const webhookRoutes: RouteDef[] = [
  {
    method: 'GET',
    url: base,
    access: 'tenant',
    summary:
      "A destination's webhook: state (`disabled`, `ok`, `failing`), events pending and delivered, " +
      'the oldest pending event with its next attempt, and recent failures.',
    tags,
    errors: ['DESTINATION_NOT_FOUND', 'UNAVAILABLE'],
    schema: { params: DestinationParams, response: { 200: WebhookStatusView } },
    handler: async (req, _reply, ctx) => {
      const p = req.params as DestinationParams;
      await ctx.accounts.destinations.get(p.tenantId, p.destinationId);
      return webhooksOf(ctx).status(p.tenantId, p.destinationId);
    },
  },
  {
    method: 'POST',
    url: `${base}/test`,
    access: 'tenant',
    summary: 'Posts a signed `webhook.test` event to the webhook URL now and reports the answer; nothing is queued.',
    tags,
    errors: ['DESTINATION_NOT_FOUND', 'SECRET_UNREADABLE', 'UNAVAILABLE'],
    schema: { params: DestinationParams, response: { 200: WebhookTestView } },
    handler: async (req, _reply, ctx) => {
      const p = req.params as DestinationParams;
      await ctx.accounts.destinations.get(p.tenantId, p.destinationId);
      return webhooksOf(ctx).test(p.tenantId, p.destinationId);
    },
  },
];
