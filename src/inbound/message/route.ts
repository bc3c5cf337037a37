import { normalizeAddress } from './addresses.js';

/** A destination as routing sees it: its id, its address and whether its server watches it. */
export interface RoutableDestination {
  id: string;
  /** The destination's address; compared after {@link normalizeAddress}, never as a substring. */
  addressKey: string;
  /** Only monitored destinations receive mail. */
  monitored: boolean;
}

export interface RouteDecision {
  /** Destinations the message goes to, in destination order, each once. */
  destinationIds: string[];
  /** True when no destination matched and the server has no default destination. */
  unrouted: boolean;
  /** The address (normalized) that matched each destination; empty when the default took it. */
  matched: Array<{ destinationId: string; address: string }>;
}

/**
 * Decides where one message goes. Each monitored destination whose address equals one of the
 * recipients (both normalized) receives it; when none matches, the server's default destination
 * does; without a default the message is unrouted. Pure: the caller records the decision.
 */
export function routeMessage(
  recipients: readonly string[],
  destinations: readonly RoutableDestination[],
  defaultDestinationId: string | null,
): RouteDecision {
  const wanted = new Set<string>();
  for (const recipient of recipients) {
    const normalized = normalizeAddress(recipient);
    if (normalized !== null) wanted.add(normalized);
  }
  const destinationIds: string[] = [];
  const matched: RouteDecision['matched'] = [];
  for (const destination of destinations) {
    if (!destination.monitored || destinationIds.includes(destination.id)) continue;
    const key = normalizeAddress(destination.addressKey);
    if (key !== null && wanted.has(key)) {
      destinationIds.push(destination.id);
      matched.push({ destinationId: destination.id, address: key });
    }
  }
  if (destinationIds.length > 0) return { destinationIds, unrouted: false, matched };
  if (defaultDestinationId !== null) return { destinationIds: [defaultDestinationId], unrouted: false, matched };
  return { destinationIds: [], unrouted: true, matched };
}
