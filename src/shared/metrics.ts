import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * The engine's Prometheus metrics, in one registry (served by `GET /metrics`).
 *
 * Counters are incremented where the event happens (inbound, outbound, webhooks, leases); gauges
 * that describe current state (watcher state, spool depth, OAuth status, lease ownership) are
 * filled at scrape time by collectors the composition root registers (`onCollect`), so nothing
 * keeps a second copy of that state. Labels are ids only (tenant, server), never addresses or
 * subjects: they are bounded and carry no personal data.
 */
export const metricsRegistry = new Registry();
collectDefaultMetrics({ register: metricsRegistry, prefix: 'mailroom_' });

const registers = [metricsRegistry];

/** Inbound messages by outcome: `routed` (to ≥ 1 destination), `unrouted`, `quarantined`, `duplicate` (UIDVALIDITY rescan). */
export const inboundMessages = new Counter({
  name: 'mailroom_inbound_messages_total',
  help: 'Inbound messages stored, by outcome (routed, unrouted, quarantined, duplicate).',
  labelNames: ['tenant_id', 'server_id', 'outcome'] as const,
  registers,
});

/** IMAP connections that failed or dropped and were retried. */
export const imapReconnects = new Counter({
  name: 'mailroom_imap_reconnects_total',
  help: 'IMAP sessions that failed or dropped and are retried with backoff.',
  labelNames: ['tenant_id', 'server_id', 'reason'] as const,
  registers,
});

/** Outbound messages by outcome: `sent`, `deferred` (temporary failure, retried), `dead_lettered` (failed for good). */
export const outboundMessages = new Counter({
  name: 'mailroom_outbound_messages_total',
  help: 'Outbound delivery attempts by outcome (sent, deferred, dead_lettered).',
  labelNames: ['tenant_id', 'server_id', 'outcome'] as const,
  registers,
});

/** A message waited because the account's hourly limit was reached. */
export const rateLimitWaits = new Counter({
  name: 'mailroom_rate_limit_waits_total',
  help: 'Times an outgoing message waited for the account hourly rate limit.',
  labelNames: ['tenant_id', 'server_id'] as const,
  registers,
});

export const heartbeatRoundTrip = new Gauge({
  name: 'mailroom_heartbeat_round_trip_seconds',
  help: 'Last heartbeat round trip (SMTP send to IMAP arrival), seconds.',
  labelNames: ['tenant_id', 'server_id'] as const,
  registers,
});

export const webhookDeliveries = new Counter({
  name: 'mailroom_webhook_deliveries_total',
  help: 'Webhook events delivered (answered 2xx).',
  labelNames: ['tenant_id', 'destination_id'] as const,
  registers,
});

export const webhookFailures = new Counter({
  name: 'mailroom_webhook_failures_total',
  help: 'Webhook deliveries that failed (retried with backoff).',
  labelNames: ['tenant_id', 'destination_id'] as const,
  registers,
});

export const oauthReauthRequired = new Counter({
  name: 'mailroom_oauth_reauth_required_total',
  help: 'OAuth sign-ins that turned REAUTH_REQUIRED (a person must sign in again).',
  labelNames: ['tenant_id', 'server_id', 'purpose'] as const,
  registers,
});

export const leaseChanges = new Counter({
  name: 'mailroom_lease_changes_total',
  help: 'E-mail server leases this instance acquired, released or lost.',
  labelNames: ['change'] as const,
  registers,
});

export const ingestBatchSeconds = new Histogram({
  name: 'mailroom_inbound_batch_seconds',
  help: 'Time to fetch, parse and commit one batch of inbound messages.',
  buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  registers,
});

// State gauges: filled at scrape time (see `onCollect`), reset before each fill.

export const imapSessionState = new Gauge({
  name: 'mailroom_imap_session_state',
  help: 'IMAP watcher state of each e-mail server this instance watches (1 for the current state).',
  labelNames: ['tenant_id', 'server_id', 'state'] as const,
  registers,
});

export const serverLeaseOwned = new Gauge({
  name: 'mailroom_server_lease_owned',
  help: 'E-mail servers whose lease this instance holds (1 each).',
  labelNames: ['tenant_id', 'server_id'] as const,
  registers,
});

export const liveInstances = new Gauge({
  name: 'mailroom_live_instances',
  help: 'Engine instances renewing their presence in the shared database.',
  registers,
});

export const oauthStatus = new Gauge({
  name: 'mailroom_oauth_status',
  help: 'OAuth 2.0 sign-in status per e-mail server and purpose (1 for the current status).',
  labelNames: ['tenant_id', 'server_id', 'purpose', 'status'] as const,
  registers,
});

export const spoolDepth = new Gauge({
  name: 'mailroom_spool_depth',
  help: 'Messages waiting in this instance’s disk spool, per e-mail server.',
  labelNames: ['tenant_id', 'server_id'] as const,
  registers,
});

export const spoolOldestAge = new Gauge({
  name: 'mailroom_spool_oldest_age_seconds',
  help: 'Age of the oldest message waiting in this instance’s spool, per e-mail server.',
  labelNames: ['tenant_id', 'server_id'] as const,
  registers,
});

export const outboundRequestsWaiting = new Gauge({
  name: 'mailroom_outbound_requests_waiting',
  help:
    'Cancellations, re-queues and deletions waiting for the instance holding the message, per instance, and ' +
    'whether it runs now (holder_running="false" for long: withdraw them, or start that instance again).',
  labelNames: ['instance_id', 'holder_running'] as const,
  registers,
});

export const outboundRequestsOldestAge = new Gauge({
  name: 'mailroom_outbound_requests_oldest_age_seconds',
  help: 'Age of the oldest request waiting for an instance, per instance.',
  labelNames: ['instance_id'] as const,
  registers,
});

export const inboundFetchBytes = new Gauge({
  name: 'mailroom_inbound_fetch_bytes',
  help: 'Bytes of fetched message sources held by mailbox passes now (held), and the budget for them (limit).',
  labelNames: ['kind'] as const,
  registers,
});

export const inboundFetchWaiting = new Gauge({
  name: 'mailroom_inbound_fetch_waiting',
  help: 'Batches waiting for room in the fetch memory budget.',
  registers,
});

/** Registers a function run before every scrape (to fill state gauges). */
export function onCollect(collect: () => Promise<void> | void): void {
  collectors.add(collect);
}

/** Removes a collector (an engine that stops). */
export function offCollect(collect: () => Promise<void> | void): void {
  collectors.delete(collect);
}

const collectors = new Set<() => Promise<void> | void>();

/** The Prometheus text exposition, after running the collectors. */
export async function renderMetrics(): Promise<{ contentType: string; body: string }> {
  for (const collect of collectors) await collect();
  return { contentType: metricsRegistry.contentType, body: await metricsRegistry.metrics() };
}

/** What the retention job and erasures removed, by kind (sources, bodies, messages, outbound, dead_letters, webhook_log, send_log, orphans). */
export const retentionDeleted = new Counter({
  name: 'mailroom_retention_deleted_total',
  help: 'Rows and sources removed by the retention job, by kind.',
  labelNames: ['kind'] as const,
  registers,
});

/** Stored inbound messages and their sources per tenant (filled at scrape time). */
export const storedMessages = new Gauge({
  name: 'mailroom_stored_messages',
  help: 'Inbound messages stored per tenant (count) and their sources (source_count, source_bytes).',
  labelNames: ['tenant_id', 'kind'] as const,
  registers,
});
