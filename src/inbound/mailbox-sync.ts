import type { Logger } from '../shared/logger.js';
import type { DestinationRow, EmailServerRow, InboundMessageRow } from '../store/rows.js';
import { newId, type Store } from '../store/store.js';
import { planBatches } from './batches.js';
import type { ImapSession, MailboxState, MessageMeta } from './imap-session.js';
import type { ParseResult } from './message/parse.js';
import {
  buildMessageRow,
  lookupKeysOf,
  parseFetched,
  quarantineForStoreError,
  type BuiltMessage,
  type MessageParser,
} from './message-record.js';
import type { InboundOptions } from './options.js';

/** What one sync pass did, for logs, status and tests. */
export interface SyncResult {
  mailbox: string;
  uidValidity: number;
  lastUid: number;
  stored: number;
  routed: number;
  quarantined: number;
  duplicates: number;
  uidValidityChanged: boolean;
}

interface Fetched {
  meta: MessageMeta;
  source: Buffer | null;
  header: Buffer | null;
}

/** A batch fetched and parsed, ready to be decided and stored. */
interface Prepared {
  fetched: Fetched[];
  parsed: ParseResult[];
}

export interface RoutedEvent {
  tenantId: string;
  serverId: string;
  messageId: string;
  destinationIds: string[];
}

export interface MailboxSyncDeps {
  store: Store;
  parser: MessageParser;
  logger: Logger;
  options: InboundOptions;
  /** Called after each commit that routed a message (long-poll wake-ups, webhooks). */
  onRouted?: (event: RoutedEvent) => void;
  /** Called for a heartbeat message (our own token header) instead of routing it. */
  onHeartbeat?: (event: { serverId: string; token: string; receivedAt: Date }) => void;
}

/**
 * One pass over one mailbox: everything above the checkpoint's UID is fetched, parsed, routed and
 * stored, each message with its checkpoint in one transaction; the post-processing action
 * (`seen`, `move:`, `delete`) runs only after the commit. Replaying a pass stores nothing twice.
 */
export class MailboxSync {
  constructor(private readonly deps: MailboxSyncDeps) {}

  async run(session: ImapSession, server: EmailServerRow, mailbox: string): Promise<SyncResult> {
    const { store, logger, options } = this.deps;
    const log = logger.child({ tenantId: server.tenantId, serverId: server.id, mailbox });
    const state = await session.openMailbox(mailbox);
    const result: SyncResult = {
      mailbox,
      uidValidity: state.uidValidity,
      lastUid: 0,
      stored: 0,
      routed: 0,
      quarantined: 0,
      duplicates: 0,
      uidValidityChanged: false,
    };
    let lastUid = await this.checkpoint(server, mailbox, state, result, log);
    await this.finishPostProcessing(session, server, mailbox, state.uidValidity, log);
    if (state.exists === 0 || state.uidNext <= lastUid + 1) {
      result.lastUid = lastUid;
      return result;
    }
    const fresh = await session.listSince(lastUid);
    const destinations = (await store.destinations.listByServer(server.id)).filter((d) => d.monitored);
    const batches = planBatches(fresh, {
      maxCount: options.batchMaxCount,
      maxBytes: options.batchMaxBytes,
      maxMessageBytes: options.parseLimits.maxBytes,
    });
    // Pipelined: batch k+1 is fetched and parsed while batch k is stored and post-processed.
    // Commits stay strictly in UID order (the checkpoint only moves forward).
    const prepare = async (batch: (typeof batches)[number]): Promise<Prepared> => {
      const sources = new Map<number, Buffer>();
      for await (const m of session.fetchSources(batch.fetch.map((x) => x.uid))) sources.set(m.uid, m.source);
      const tooLarge = new Set(batch.tooLarge.map((m) => m.uid));
      const ordered = [...batch.fetch, ...batch.tooLarge].sort((a, b) => a.uid - b.uid);
      const fetched: Fetched[] = [];
      for (const meta of ordered) {
        const source = tooLarge.has(meta.uid) ? null : (sources.get(meta.uid) ?? null);
        const header = tooLarge.has(meta.uid) ? await session.fetchHeader(meta.uid) : null;
        fetched.push({ meta, source, header });
      }
      const parsed = await Promise.all(
        fetched.map((f) => parseFetched(this.deps.parser, f.source, f.meta.size, options.parseLimits.maxBytes)),
      );
      return { fetched, parsed };
    };
    let next: Promise<Prepared> | undefined = batches[0] ? prepare(batches[0]) : undefined;
    for (let i = 0; next; i++) {
      const prepared = await next;
      const following = batches[i + 1];
      next = following ? prepare(following) : undefined;
      // A failure of the next batch surfaces when it is awaited, not as an unhandled rejection.
      next?.catch(() => undefined);
      const done = await this.ingestBatch(server, mailbox, state.uidValidity, prepared, destinations, result, log);
      lastUid = (prepared.fetched[prepared.fetched.length - 1] as Fetched).meta.uid;
      await this.postProcess(session, server, done, log);
    }
    result.lastUid = lastUid;
    if (result.stored > 0) {
      log.info(
        { stored: result.stored, routed: result.routed, quarantined: result.quarantined, lastUid },
        'mailbox synchronised',
      );
    }
    return result;
  }

  /** Reads the checkpoint; on a UIDVALIDITY change starts a rescan (dedupe keeps it harmless) and raises an alert. */
  private async checkpoint(
    server: EmailServerRow,
    mailbox: string,
    state: MailboxState,
    result: SyncResult,
    log: Logger,
  ): Promise<number> {
    const { store } = this.deps;
    const cp = await store.checkpoints.get(server.id, mailbox);
    if (!cp) {
      await store.checkpoints.put(server.id, mailbox, state.uidValidity, 0);
      return 0;
    }
    if (cp.uidValidity === state.uidValidity) return cp.lastUid;
    result.uidValidityChanged = true;
    const message =
      `UIDVALIDITY of ${mailbox} changed from ${cp.uidValidity} to ${state.uidValidity}: ` +
      'the mailbox was recreated or restored; rescanning it, messages already stored are not routed again';
    log.warn({ previous: cp.uidValidity, current: state.uidValidity }, 'UIDVALIDITY changed');
    await store.transaction(async (tx) => {
      await tx.alerts.insert({
        id: newId(),
        tenantId: server.tenantId,
        serverId: server.id,
        kind: 'uidvalidity-changed',
        message,
        details: { mailbox, previous: cp.uidValidity, current: state.uidValidity },
      });
      await tx.checkpoints.put(server.id, mailbox, state.uidValidity, 0);
    });
    return 0;
  }

  /**
   * Parses a batch (in parallel, in the worker pool), decides each message in UID order, then
   * stores the whole batch and the new checkpoint in one transaction. Should that transaction
   * fail (a message the database refuses), the batch is stored message by message, and a message
   * that still cannot be stored is kept as quarantined: the mailbox never stalls behind it.
   */
  private async ingestBatch(
    server: EmailServerRow,
    mailbox: string,
    uidValidity: number,
    prepared: Prepared,
    destinations: DestinationRow[],
    result: SyncResult,
    log: Logger,
  ): Promise<InboundMessageRow[]> {
    const { store, options } = this.deps;
    const { fetched, parsed } = prepared;
    const keys = parsed.map(lookupKeysOf);
    const known = await store.messages.existingDedupeKeys(
      server.id,
      keys.map((k) => k.dedupeKey).filter((k): k is string => k !== null),
    );
    const conversations = await store.messages.conversationsOf(server.tenantId, [
      ...new Set(keys.flatMap((k) => k.threadIds)),
    ]);
    const built: BuiltMessage[] = fetched.map((f, i) => {
      const message = buildMessageRow({
        server,
        mailbox,
        uidValidity,
        meta: f.meta,
        source: f.source,
        header: f.header,
        parsed: parsed[i] as ParseResult,
        destinations,
        messageIdDomain: options.messageIdDomain,
        lookups: {
          isDuplicate: (key) => known.has(key),
          conversationOf: (ids) => ids.map((id) => conversations.get(id)).find((c) => c !== undefined) ?? null,
        },
      });
      // Later messages of the same batch see this one as stored.
      known.add(message.row.dedupeKey);
      if (message.row.messageIdHeader) conversations.set(message.row.messageIdHeader, message.row.conversationId);
      return message;
    });
    const lastUid = (fetched[fetched.length - 1] as Fetched).meta.uid;
    let inserted: Set<string>;
    try {
      inserted = await this.store(server, mailbox, uidValidity, built, fetched, lastUid);
    } catch (err) {
      log.warn({ err, uids: fetched.map((f) => f.meta.uid) }, 'batch could not be stored; storing message by message');
      inserted = new Set();
      for (const [i, message] of built.entries()) {
        const f = fetched[i] as Fetched;
        try {
          for (const id of await this.store(server, mailbox, uidValidity, [message], [f], f.meta.uid)) inserted.add(id);
        } catch (single) {
          log.error({ err: single, uid: f.meta.uid }, 'message could not be stored; quarantining it');
          const fallback = quarantineForStoreError(message, single);
          for (const id of await this.store(server, mailbox, uidValidity, [fallback], [f], f.meta.uid))
            inserted.add(id);
          built[i] = fallback;
        }
      }
    }
    const done: InboundMessageRow[] = [];
    for (const message of built) {
      if (!inserted.has(message.row.id)) continue;
      done.push({ ...message.row, ingestedAt: new Date() });
      result.stored += 1;
      if (message.row.status === 'quarantined') result.quarantined += 1;
      if (message.row.status === 'duplicate') result.duplicates += 1;
      if (message.destinationIds.length > 0) {
        result.routed += 1;
        this.deps.onRouted?.({
          tenantId: server.tenantId,
          serverId: server.id,
          messageId: message.row.id,
          destinationIds: message.destinationIds,
        });
      }
      if (message.row.status === 'heartbeat' && message.heartbeatToken) {
        this.deps.onHeartbeat?.({ serverId: server.id, token: message.heartbeatToken, receivedAt: new Date() });
      }
    }
    return done;
  }

  /** One transaction: messages, raw sources, deliveries in UID order, and the checkpoint. */
  private store(
    server: EmailServerRow,
    mailbox: string,
    uidValidity: number,
    built: BuiltMessage[],
    fetched: Fetched[],
    lastUid: number,
  ): Promise<Set<string>> {
    return this.deps.store.transaction(async (tx) => {
      const inserted = await tx.messages.insertBatch(
        built.map((b, i) => ({ row: b.row, raw: fetched[i]?.source ?? null })),
      );
      const perDestination = new Map<string, string[]>();
      for (const b of built) {
        if (!inserted.has(b.row.id)) continue;
        for (const d of b.destinationIds) perDestination.set(d, [...(perDestination.get(d) ?? []), b.row.id]);
      }
      for (const [destinationId, ids] of [...perDestination].sort(([a], [b]) => a.localeCompare(b))) {
        const seqs = await tx.deliveries.append(destinationId, server.tenantId, ids);
        // Webhooks (push delivery): the outbox rows commit with the deliveries; a no-op without a webhook URL.
        await tx.webhooks.enqueue(destinationId, seqs);
      }
      await tx.checkpoints.put(server.id, mailbox, uidValidity, lastUid);
      return inserted;
    });
  }

  /** Runs post-processing left over by an interrupted pass (stored, but the action never ran). */
  private async finishPostProcessing(
    session: ImapSession,
    server: EmailServerRow,
    mailbox: string,
    uidValidity: number,
    log: Logger,
  ): Promise<void> {
    const pending = await this.deps.store.messages.pendingPostProcess(server.id, mailbox, uidValidity, 500);
    if (pending.length > 0) await this.postProcess(session, server, pending, log);
  }

  private async postProcess(
    session: ImapSession,
    server: EmailServerRow,
    rows: InboundMessageRow[],
    log: Logger,
  ): Promise<void> {
    const eligible = rows.filter((r) => r.status !== 'quarantined');
    if (eligible.length === 0) return;
    const heartbeats = eligible.filter((r) => r.status === 'heartbeat').map((r) => r.uid);
    const others = eligible.filter((r) => r.status !== 'heartbeat').map((r) => r.uid);
    try {
      if (heartbeats.length > 0) await session.delete(heartbeats);
      const action = server.postProcess;
      if (action === 'seen') await session.markSeen(others);
      else if (action === 'delete') await session.delete(others);
      else if (action.startsWith('move:')) await session.move(others, action.slice('move:'.length));
      await this.deps.store.messages.markPostProcessed(
        eligible.map((r) => r.id),
        new Date(),
      );
    } catch (err) {
      // The messages are stored; the action is retried on the next pass.
      log.warn({ err, action: server.postProcess, count: eligible.length }, 'post-processing failed; will retry');
    }
  }
}
