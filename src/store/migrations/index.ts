import { InitialSchema1764000000001 } from './0001-initial-schema.js';
import { Inbound1764000000002 } from './0002-inbound.js';
import { Outbound1764000000003 } from './0003-outbound.js';
import { Templates1764000000004 } from './0004-templates.js';
import { OAuth1764000000005 } from './0005-oauth.js';
import { Webhooks1764000000006 } from './0006-webhooks.js';
import { ServerDefaultDestinationCa1764000000007 } from './0007-server-default-destination-ca.js';
import { Leases1764000000008 } from './0008-leases.js';
import { PostProcessWatermark1764000000009 } from './0009-post-process-watermark.js';
import { SendLogReservations1764000000010 } from './0010-send-log-reservations.js';
import { OutboundRequests1764000000011 } from './0011-outbound-requests.js';
import { OutboundRequestClaims1764000000012 } from './0012-outbound-request-claims.js';
import { RetiredInstances1764000000013 } from './0013-retired-instances.js';
import { ServerProxy1764000000014 } from './0014-server-proxy.js';
import { GrantAccountPlace1764000000015 } from './0015-grant-account-place.js';
import { WebhookPendingSeq1764000000016 } from './0016-webhook-pending-seq.js';
import { RefusedRecipients1764000000017 } from './0017-refused-recipients.js';
import { InstanceProcessAndAcceptedRecipients1764000000018 } from './0018-instance-process-and-accepted-recipients.js';
import { ServerTls1764000000021 } from './0021-server-tls.js';
import { MessageSources1764000000022 } from './0022-message-sources.js';
import { Retention1764000000023 } from './0023-retention.js';
import { Erasures1764000000024 } from './0024-erasures.js';
import { AuditLog1764000000025 } from './0025-audit-log.js';
import { TraceEvents1764000000026 } from './0026-trace-events.js';
import { TraceSearch1764000000027 } from './0027-trace-search.js';
import { WebhookDestinationLeases1764000000030 } from './0030-webhook-destination-leases.js';
import { ErasureSources1764000000031 } from './0031-erasure-sources.js';
import { DestinationLastSeq1764000000033 } from './0033-destination-last-seq.js';
import { ServerHostsByTenant1764000000034 } from './0034-server-hosts-by-tenant.js';
import { WatchedFolders1764000000038 } from './0038-watched-folders.js';
import { TraceSearchIndexes1764000000041 } from './0041-trace-search-indexes.js';
import { WebhookBatch1764000000045 } from './0045-webhook-batch.js';

/** Every migration, oldest first. A new one is a new file here plus one line below. */
export const MIGRATIONS = [
  InitialSchema1764000000001,
  Inbound1764000000002,
  Outbound1764000000003,
  Templates1764000000004,
  OAuth1764000000005,
  Webhooks1764000000006,
  ServerDefaultDestinationCa1764000000007,
  Leases1764000000008,
  PostProcessWatermark1764000000009,
  SendLogReservations1764000000010,
  OutboundRequests1764000000011,
  OutboundRequestClaims1764000000012,
  RetiredInstances1764000000013,
  ServerProxy1764000000014,
  GrantAccountPlace1764000000015,
  WebhookPendingSeq1764000000016,
  RefusedRecipients1764000000017,
  InstanceProcessAndAcceptedRecipients1764000000018,
  ServerTls1764000000021,
  MessageSources1764000000022,
  Retention1764000000023,
  Erasures1764000000024,
  AuditLog1764000000025,
  TraceEvents1764000000026,
  TraceSearch1764000000027,
  WebhookDestinationLeases1764000000030,
  ErasureSources1764000000031,
  DestinationLastSeq1764000000033,
  ServerHostsByTenant1764000000034,
  WatchedFolders1764000000038,
  TraceSearchIndexes1764000000041,
  WebhookBatch1764000000045,
];
