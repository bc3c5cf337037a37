import { createHash } from 'node:crypto';
import { GraphError, graphFolderOf, type GraphClient } from '../shared/graph/graph-client.js';
import type { Logger } from '../shared/logger.js';
import { mapLimited } from '../shared/map-limited.js';
import type { EmailServerRow } from '../store/rows.js';
import { newId, type Store } from '../store/store.js';
import type { Fetched, MailboxSync, PassMemory, SyncResult } from './mailbox-sync.js';
import { emptySyncResult, routingOf } from './mailbox-sync.js';
import type { ParseResult } from './message/parse.js';
import type { StoredMessage } from './post-processing.js';

/** [8] `$value` requests in flight at once per folder (Graph allows 4 concurrent requests per mailbox and app for Outlook; a few more hide latency). */
const SOURCE_CONCURRENCY = 8;
/** [8] post-processing requests in flight at once. */
const ACTION_CONCURRENCY = 8;
/** [3] synchronisation resets (410) one pass follows before it gives up until the next. */
const MAX_RESETS_PER_PASS = 3;

/**
 * The UIDVALIDITY of every Graph message row: 0, which IMAP never uses (RFC 3501: nonzero). A
 * resynchronisation keeps it, so a message read again finds its row (and is not routed again).
 */
export const GRAPH_UID_VALIDITY = 0;

/**
 * A Graph message's stand-in for an IMAP UID: 53 bits of SHA-256 of its immutable id, stable for
 * the message's life (`IdType="ImmutableId"`). The row's (server, mailbox, 0, uid) key then
 * refuses it a second time however often a delta round lists it (an update, a replay, a reset).
 * Two messages of one folder share one with odds of about n²/2⁵⁴ (1 in 18,000 for a million).
 */
export function graphUidOf(id: string): number {
  return Number(createHash('sha256').update(id).digest().readBigUInt64BE(0) >> 11n);
}

export interface GraphSyncDeps {
  store: Store;
  /** The IMAP path's parse, classify, route and store (`ingestFetched`). */
  sync: MailboxSync;
  /** Messages per batch (one transaction each): MAILROOM_IMAP_BATCH_MESSAGES. */
  batchMaxCount: number;
  /** Largest message fetched; a larger one is stored quarantined (too large). */
  maxMessageBytes: number;
  /** Messages asked for per delta page (`Prefer: odata.maxpagesize`). */
  pageSize: number;
}

/**
 * One pass over one Graph folder: the delta round from the stored link (the checkpoint), page by
 * page. Each page's new messages (`$value`) go through the same parse, classify and route path as
 * IMAP's and are stored in batches, each in one transaction with the checkpoint: while the page is
 * not done, the link that produced it; with its last batch, its next or delta link. A stop between
 * two commits reads the page again from its link, and the messages stored already are recognised
 * by their id (see graphUidOf) before their source is fetched: nothing is routed twice. A 410
 * (the delta token expired or the service reset it) starts the folder over from an empty link,
 * with the same guarantee (https://learn.microsoft.com/graph/delta-query-overview).
 */
export class GraphMailboxSync {
  constructor(private readonly deps: GraphSyncDeps) {}

  async run(
    client: GraphClient,
    server: EmailServerRow,
    mailbox: string,
    stop: AbortSignal,
    log: Logger,
  ): Promise<SyncResult> {
    const { store } = this.deps;
    const folderLog = log.child({ mailbox });
    const folder = graphFolderOf(mailbox);
    const result = emptySyncResult(mailbox, GRAPH_UID_VALIDITY);
    const checkpoint = await store.checkpoints.get(server.id, mailbox);
    const link =
      (checkpoint?.uidValidity === GRAPH_UID_VALIDITY ? checkpoint.deltaLink : null) ?? client.deltaStart(folder);
    const routing = routingOf(server, await store.destinations.listByServer(server.id));
    const memory: PassMemory = { keys: new Set(), conversations: new Map() };
    // Post-processing of a committed batch runs while the next one is fetched (one at a time, in
    // order); the pass ends only once it is done.
    let posting: Promise<void> = Promise.resolve();
    try {
      await this.pages(client, server, mailbox, { link, folder, stop, routing, memory, result }, folderLog, (p) => {
        posting = posting.then(p);
      });
    } finally {
      await posting;
    }
    if (result.stored > 0) {
      folderLog.info(
        { stored: result.stored, routed: result.routed, quarantined: result.quarantined },
        'mailbox synchronised',
      );
    }
    return result;
  }

  /** The pages of the round from `pass.link`, each batch committed with its link; `post` queues post-processing. */
  private async pages(
    client: GraphClient,
    server: EmailServerRow,
    mailbox: string,
    pass: {
      link: string;
      folder: string;
      stop: AbortSignal;
      routing: ReturnType<typeof routingOf>;
      memory: PassMemory;
      result: SyncResult;
    },
    folderLog: Logger,
    post: (run: () => Promise<void>) => void,
  ): Promise<void> {
    const { store } = this.deps;
    const { folder, stop, routing, memory, result } = pass;
    let link = pass.link;
    let resets = 0;
    for (;;) {
      let page;
      try {
        page = await client.delta(link, this.deps.pageSize);
      } catch (err) {
        if (!(err instanceof GraphError) || !err.syncStateLost || resets >= MAX_RESETS_PER_PASS) throw err;
        resets += 1;
        result.uidValidityChanged = true;
        await this.reset(server, mailbox, err, folderLog);
        link = client.deltaStart(folder);
        continue;
      }
      const next = page.nextLink ?? page.deltaLink;
      const present = page.items.filter((i) => !i.removed);
      const known = await store.messages.storedUids(
        server.id,
        mailbox,
        GRAPH_UID_VALIDITY,
        present.map((i) => graphUidOf(i.id)),
      );
      const fresh = present.filter((i) => !known.has(graphUidOf(i.id)));
      const max = Math.max(1, this.deps.batchMaxCount);
      for (let start = 0; start < fresh.length; start += max) {
        const chunk = fresh.slice(start, start + max);
        const last = start + max >= fresh.length;
        const commitLink = last ? next : link;
        const ids = new Map(chunk.map((i) => [graphUidOf(i.id), i.id]));
        const batch = await this.fetch(client, chunk);
        const done = await this.deps.sync.ingestFetched(
          server,
          mailbox,
          GRAPH_UID_VALIDITY,
          batch,
          { routing, memory, result, log: folderLog },
          (tx) => tx.checkpoints.putDeltaLink(server.id, mailbox, commitLink, batch.fetched.length),
        );
        post(() => this.postProcess(client, server, done, ids, folderLog));
        if (stop.aborted && !last) return; // the rest of the page waits for the next pass
      }
      if (fresh.length === 0 && next !== null && next !== link) {
        await store.checkpoints.putDeltaLink(server.id, mailbox, next, 0);
      }
      if (next === null) throw new Error('Microsoft Graph sent a delta page with neither a next nor a delta link');
      result.lastUid += fresh.length;
      if (page.deltaLink !== null || stop.aborted) return;
      link = next;
    }
  }

  /**
   * The sources of a chunk, a few at a time. One deleted meanwhile (404) is left out; one over the
   * size limit is kept without its source, quarantined as too large, as IMAP's are.
   */
  private async fetch(
    client: GraphClient,
    chunk: Array<{ id: string; receivedAt: Date | null }>,
  ): Promise<{ fetched: Fetched[]; failures: Map<number, ParseResult> }> {
    const failures = new Map<number, ParseResult>();
    const got = await mapLimited(chunk, SOURCE_CONCURRENCY, async (item): Promise<Fetched | null> => {
      const uid = graphUidOf(item.id);
      const internalDate = item.receivedAt ?? new Date();
      try {
        const source = await client.source(item.id);
        return { meta: { uid, size: source.length, internalDate, emailId: null }, source, header: null };
      } catch (err) {
        if (err instanceof GraphError && err.status === 404) return null;
        if ((err as { code?: unknown }).code !== 'ETOOLARGE') throw err;
        const max = this.deps.maxMessageBytes;
        failures.set(uid, {
          ok: false,
          reason: 'too-large',
          detail: `over the limit of ${max} bytes; the message stays in the mailbox`,
        });
        return { meta: { uid, size: max + 1, internalDate, emailId: null }, source: null, header: null };
      }
    });
    return { fetched: got.filter((f): f is Fetched => f !== null), failures };
  }

  /**
   * The server's action on the messages just stored (heartbeats are deleted, quarantined ones left
   * where they are), after their commit. A failure is logged: the message is stored and counted
   * as such, and is not acted on again (Graph lists no "unprocessed" set to resume from).
   */
  private async postProcess(
    client: GraphClient,
    server: EmailServerRow,
    done: StoredMessage[],
    ids: Map<number, string>,
    log: Logger,
  ): Promise<void> {
    const action = server.postProcess;
    const eligible = done.filter((r) => r.status !== 'quarantined');
    let failed = 0;
    await mapLimited(eligible, ACTION_CONCURRENCY, async (row) => {
      const id = ids.get(row.uid);
      if (id === undefined) return;
      try {
        if (row.status === 'heartbeat' || action === 'delete') await client.delete(id);
        else if (action === 'seen') await client.markRead(id);
        else if (action.startsWith('move:')) await client.move(id, action.slice('move:'.length));
      } catch (err) {
        failed += 1;
        if (failed === 1) log.warn({ err, action }, 'post-processing failed (the message is stored)');
      }
    });
    if (failed > 1) log.warn({ action, failed }, 'post-processing failed for several messages');
  }

  /** The delta token is no longer known: an alert, and the folder is read again from the start. */
  private async reset(server: EmailServerRow, mailbox: string, err: GraphError, log: Logger): Promise<void> {
    const message =
      `Microsoft Graph no longer knows the synchronisation state of ${mailbox} (${err.response}); ` +
      'reading the folder again from the start, messages already stored are not routed again';
    log.warn({ response: err.response }, 'Graph synchronisation reset');
    await this.deps.store.transaction(async (tx) => {
      await tx.alerts.insert({
        id: newId(),
        tenantId: server.tenantId,
        serverId: server.id,
        kind: 'graph-sync-reset',
        message,
        details: { mailbox, response: err.response },
      });
      await tx.checkpoints.putDeltaLink(server.id, mailbox, null, 0);
    });
  }
}
