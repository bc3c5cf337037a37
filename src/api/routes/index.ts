import type { RouteDef } from '../route.js';
import { auditRoutes } from './audit.js';
import { consoleRoutes } from './console.js';
import { destinationRoutes } from './destinations.js';
import { eventRoutes } from './events.js';
import { healthRoutes } from './health.js';
import { lifecycleRoutes } from './lifecycle.js';
import { heldMailRoutes } from './held-mail.js';
import { messageRoutes } from './messages.js';
import { oauthRoutes } from './oauth.js';
import { outboundRoutes } from './outbound.js';
import { responseRoutes } from './responses.js';
import { serverRoutes } from './servers.js';
import { tenantMessageRoutes } from './tenant-messages.js';
import { tenantRoutes } from './tenants.js';
import { tokenRoutes } from './tokens.js';
import { traceRoutes } from './trace.js';
import { webhookRoutes } from './webhooks.js';

/** Every route of the API. A route is added to one of these files and nowhere else. */
export const ROUTES: readonly RouteDef[] = [
  ...healthRoutes,
  ...tenantRoutes,
  ...serverRoutes,
  ...destinationRoutes,
  ...tokenRoutes,
  ...messageRoutes,
  ...tenantMessageRoutes,
  ...heldMailRoutes,
  ...eventRoutes,
  ...responseRoutes,
  ...outboundRoutes,
  ...oauthRoutes,
  ...webhookRoutes,
  ...auditRoutes,
  ...traceRoutes,
  ...lifecycleRoutes,
  ...consoleRoutes,
];
