import { performance } from 'node:perf_hooks';
import type { ByteBudget, ByteHold } from '../shared/byte-budget.js';
import { isMailroomError } from '../shared/errors.js';
import { serverLogFields, type Logger } from '../shared/logger.js';
import { inboundMessages, ingestBatchSeconds } from '../shared/metrics.js';
import type { DestinationRow, EmailServerRow, InboundStatus } from '../store/rows.js';
import { mapLimited } from '../shared/map-limited.js';
import { newId, type Store, type StoreSession } from '../store/store.js';
import { isTransientStoreError } from '../store/transient-errors.js';
import { planBatches } from './batches.js';
import { readCheckpoint } from './mailbox-checkpoint.js';
import { PostProcessing, type StoredMessage } from './post-processing.js';
import type { ImapSession, MessageMeta, MessageSource } from './imap-session.js';
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

/** [4] messages of a batch being parsed at once (enough to keep the parse workers busy). */
const PARSE_CONCURRENCY = 4;

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
  /** The folder is Gmail's All Mail (special use `\All`): not read (see `run`). */
  notWatched?: boolean;
  /**
   * The mailbox as the pass found it (UIDNEXT), when the pass left nothing to do below it: every
   * message stored and post-processed. Null otherwise (stopped early, an action to retry).
   */
  settledUidNext: number | null;
}

/** A pass's result before it did anything. */
export function emptySyncResult(mailbox: string, uidValidity: number): SyncResult {
  return {
    mailbox,
    uidValidity,
    lastUid: 0,
    stored: 0,
    routed: 0,
    quarantined: 0,
    duplicates: 0,
    uidValidityChanged: false,
    settledUidNext: null,
  };
}

/** A message read from the mailbox: its source, or the header alone of one too large to fetch. */
export interface Fetched {
  meta: MessageMeta;
  source: Buffer | null;
  header: Buffer | null;
}

/**
 * A message listed for a pass: its UID, and its size and arrival date when they were asked for
 * (messages over the small-message bound); a small one's size is that bound until it is fetched.
 */
interface Listed {
  uid: number;
  size: number;
  meta: MessageMeta | null;
}

type Batch = ReturnType<typeof planBatches<Listed>>[number];

/** A batch fetched and parsed, with what the database knew of its keys. */
interface LookedUp {
  /** When its fetch began (`performance.now()`), for the batch duration metric. */
  startedAt: number;
  fetched: Fetched[];
  parsed: ParseResult[];
  /** Dedupe keys of the batch already stored for this server. */
  known: Set<string>;
  /** Conversation of stored messages named by the batch's In-Reply-To and References. */
  conversations: Map<string, string>;
}

/** A batch fetched, parsed and decided (status, destinations, conversation), ready to be stored. */
interface Prepared {
  /** When its fetch began (`performance.now()`), for the batch duration metric. */
  startedAt: number;
  /** The highest UID the batch accounts for (copies of stored messages skipped included). */
  upTo: number;
  fetched: Fetched[];
  built: BuiltMessage[];
  /** Its share of the fetch memory budget (the fetched sources' bytes), given back once stored. */
  hold: ByteHold;
}

/**
 * What the batches of one pass stored so far. A batch is looked up in the database while the
 * batch before it is still being committed, so the keys of earlier batches of the pass are
 * remembered here (this watcher is the only writer for its server).
 */
export interface PassMemory {
  keys: Set<string>;
  conversations: Map<string, string>;
}

/** The `outcome` label of `inboundMessages` for each stored status (heartbeats are not counted). */
const OUTCOME_OF_STATUS: Record<InboundStatus, 'routed' | 'unrouted' | 'quarantined' | 'duplicate' | null> = {
  routed: 'routed',
  unrouted: 'unrouted',
  quarantined: 'quarantined',
  duplicate: 'duplicate',
  heartbeat: null,
};

/** Where the messages of a pass may go: the server's monitored destinations and its default one. */
export interface Routing {
  destinations: DestinationRow[];
  defaultDestinationId: string | null;
}

/**
 * The routing of a pass, from the server's destinations as stored now: the default destination
 * counts only while it exists and still uses this server (the watcher's server row may be older).
 */
export function routingOf(server: EmailServerRow, destinations: DestinationRow[]): Routing {
  const fallback = destinations.find((d) => d.id === server.defaultDestinationId && d.serverId === server.id);
  return { destinations: destinations.filter((d) => d.monitored), defaultDestinationId: fallback?.id ?? null };
}

/**
 * The checkpoint a batch commits with, in its transaction: IMAP's is the last UID of the batch;
 * Microsoft Graph's the delta link (graph-sync.ts).
 */
export type CommitCheckpoint = (tx: StoreSession) => Promise<void>;

/** Whether a routed message's destinations are all among `gone`. */
function routedOnlyTo(message: BuiltMessage, gone: Set<string>): boolean {
  return message.row.status === 'routed' && message.destinationIds.every((d) => gone.has(d));
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
  /**
   * Memory for fetched message sources shared by every pass of this engine: a batch is fetched
   * only once its bytes fit (after a mass takeover, a thousand mailboxes with a backlog do not
   * each hold two batches at once).
   */
  fetchBudget: ByteBudget;
  /** Called after each commit that routed a message (long-poll wake-ups, webhooks). */
  onRouted?: (event: RoutedEvent) => void;
  /** Called for a heartbeat message (our own token header) instead of routing it. */
  onHeartbeat?: (event: { serverId: string; token: string; receivedAt: Date }) => void;
}

/**
 * One pass over one mailbox: everything above the checkpoint's UID is fetched, parsed, routed and
 * stored, each message with its checkpoint in one transaction; the post-processing action
 * (`seen`, `move:`, `delete`) runs only after the commit. Replaying a pass stores nothing twice.
 * A pass given an aborted `stop` signal ends after the batch it is storing (the rest waits for
 * the next pass: a stopping engine does not ingest a whole backlog first).
 */
export class MailboxSync {
  private readonly postProcessing: PostProcessing;

  constructor(private readonly deps: MailboxSyncDeps) {
    this.postProcessing = new PostProcessing(deps.store);
  }

  /**
   * `serverLog`: the watcher's logger, which names the tenant and the server. `previous`: this
   * watcher's last pass over the mailbox; when it settled and the mailbox's UIDVALIDITY and UIDNEXT
   * are unchanged, nothing arrived since and nothing is left to do, so the pass ends without the
   * database (the safety sync of 10,000 idle mailboxes, 33 a second, would read a checkpoint each).
   */
  async run(
    session: ImapSession,
    server: EmailServerRow,
    mailbox: string,
    stop?: AbortSignal,
    serverLog?: Logger,
    previous?: SyncResult,
  ): Promise<SyncResult> {
    const { store, logger } = this.deps;
    const state = await session.openMailbox(mailbox);
    const result = emptySyncResult(mailbox, state.uidValidity);
    if (
      previous?.settledUidNext !== null &&
      previous?.settledUidNext === state.uidNext &&
      previous.uidValidity === state.uidValidity &&
      previous.mailbox === mailbox
    ) {
      return { ...result, lastUid: previous.lastUid, settledUidNext: state.uidNext };
    }
    const log = (serverLog ?? logger.child(serverLogFields(server))).child({ mailbox });
    if (state.specialUse === '\\All') {
      // Gmail's All Mail (whatever its name in the mailbox's language): every message of the
      // mailbox, its sent mail and drafts too. Not watched (`accounts/server-form.ts` refuses its
      // English names); the labels mail arrives in are.
      log.warn("not watching this folder: it is the mailbox's All Mail (\\All), which holds sent mail and drafts too");
      result.notWatched = true;
      return result;
    }
    const progress = await readCheckpoint(store, server, mailbox, state, result, log);
    let lastUid = progress.lastUid;
    const caughtUp = await this.postProcessing.finishLeftovers(
      session,
      server,
      mailbox,
      state.uidValidity,
      progress,
      log,
    );
    if (state.exists === 0 || state.uidNext <= lastUid + 1) {
      result.lastUid = lastUid;
      if (caughtUp) result.settledUidNext = state.uidNext;
      return result;
    }
    const routing = routingOf(server, await store.destinations.listByServer(server.id));
    const batches = this.batchesAfter(session, server, mailbox, lastUid);
    // Pipelined: batch k+1 is listed, fetched, parsed, looked up and decided while batch k is
    // stored, and batch k is post-processed while batch k+1 is stored. Commits stay strictly in UID
    // order (the checkpoint only moves forward); a batch's post-processing starts only after its commit.
    const memory: PassMemory = { keys: new Set(), conversations: new Map() };
    // Batch k+1 is prepared only once batch k is: decisions run in batch order, each one seeing
    // the keys of the batches before it in `memory`.
    const prepareNext = async (): Promise<Prepared | null> => {
      const step = await batches.next();
      if (step.done) return null;
      // Its sizes are known (or bounded: a small message is at most the small-message bound)
      // before the fetch; once fetched, the hold shrinks to what the sources really take.
      const hold = await this.deps.fetchBudget.acquire(step.value.fetch.reduce((sum, m) => sum + m.size, 0));
      try {
        const lookedUp = await this.lookUpBatch(session, server, step.value);
        hold.shrinkTo(lookedUp.fetched.reduce((sum, f) => sum + (f.source?.length ?? 0), 0));
        const built = this.decideBatch(server, mailbox, state.uidValidity, lookedUp, memory, routing);
        return { startedAt: lookedUp.startedAt, upTo: step.value.upTo, fetched: lookedUp.fetched, built, hold };
      } catch (err) {
        hold.release();
        throw err;
      }
    };
    let next = prepareNext();
    // postProcess never rejects: it answers whether the progress mark could move. A failed action
    // (or left-overs not all done) is retried on the next pass, so no later batch of this pass may
    // move the mark past it: `posting` answers whether every action of the pass so far succeeded.
    let posting: Promise<boolean> = Promise.resolve(caughtUp);
    let stoppedEarly = false;
    try {
      for (let prepared = await next; prepared; prepared = await next) {
        next = prepareNext();
        // A failure of the next batch surfaces when it is awaited, not as an unhandled rejection.
        next.catch(() => undefined);
        let done: StoredMessage[];
        try {
          if (prepared.fetched.length === 0) {
            // Every message of it was expunged meanwhile, or a copy of one stored already.
            if (prepared.upTo > lastUid)
              await store.checkpoints.put(server.id, mailbox, state.uidValidity, prepared.upTo);
            lastUid = Math.max(lastUid, prepared.upTo);
            continue;
          }
          done = await this.ingestBatch(server, mailbox, state.uidValidity, prepared, result, log);
        } finally {
          prepared.hold.release(); // stored (or failed): its sources are no longer needed
        }
        lastUid = Math.max((prepared.fetched[prepared.fetched.length - 1] as Fetched).meta.uid, prepared.upTo);
        const fine = await posting;
        const upTo = { mailbox, uidValidity: state.uidValidity, uid: lastUid };
        posting = this.postProcessing.run(session, server, done, fine ? upTo : null, log).then((ok) => fine && ok);
        if (stop?.aborted) {
          stoppedEarly = true;
          break; // the batch being fetched meanwhile is left for the next pass
        }
      }
    } finally {
      // A pass that ends early (an error, the connection lost) gives back what its next batch holds.
      next.then((prepared) => prepared?.hold.release()).catch(() => undefined);
    }
    // Every UID below the UIDNEXT read at the start was listed by the searches after it.
    if ((await posting) && !stoppedEarly) result.settledUidNext = state.uidNext;
    result.lastUid = lastUid;
    if (result.stored > 0) {
      log.info(
        { stored: result.stored, routed: result.routed, quarantined: result.quarantined, lastUid },
        'mailbox synchronised',
      );
    }
    return result;
  }

  /**
   * Parses, decides and stores messages read by another source (Microsoft Graph, graph-sync.ts) in
   * one transaction with `commit`'s checkpoint: the same classification, dedupe, routing and
   * storage as an IMAP batch. `memory` carries the keys of the pass's earlier batches.
   */
  async ingestFetched(
    server: EmailServerRow,
    mailbox: string,
    uidValidity: number,
    batch: { fetched: Fetched[]; failures: ReadonlyMap<number, ParseResult> },
    pass: { routing: Routing; memory: PassMemory; result: SyncResult; log: Logger },
    commit: CommitCheckpoint,
  ): Promise<StoredMessage[]> {
    const startedAt = performance.now();
    const lookedUp = await this.lookUp(server, batch.fetched, batch.failures, startedAt);
    const built = this.decideBatch(server, mailbox, uidValidity, lookedUp, pass.memory, pass.routing);
    // Graph's UIDs are ids' hashes, not in order: the checkpoint there is the delta link (upTo unused).
    const prepared = { startedAt, upTo: 0, fetched: batch.fetched, built };
    return this.ingestBatch(server, mailbox, uidValidity, prepared, pass.result, pass.log, commit);
  }

  /**
   * The batches of messages above `lastUid`, in UID order. Two `UID SEARCH`es list them: all of
   * them, and those over the small-message bound (`batchMaxBytes / batchMaxCount`), whose sizes
   * and dates are then asked for per chunk as the pass gets to it; a small one's date comes with
   * its source. The first batch is fetched at once however long the backlog, and a backlog of small
   * messages costs no metadata round at all.
   *
   * A server that gives each message an id of its own (Gmail's X-GM-MSGID, RFC 8474 EMAILID) is
   * asked for the ids of the whole chunk first: a message this server stored already, found in
   * another watched folder (on Gmail a label is a folder, and one message is in each of its labels),
   * is neither fetched nor stored again, and nothing is done to it in this folder (Gmail keeps
   * \Seen per message, not per label). Each batch carries `upTo`, the highest UID it accounts for,
   * skipped copies included: the checkpoint moves past them.
   */
  private async *batchesAfter(
    session: ImapSession,
    server: EmailServerRow,
    mailbox: string,
    lastUid: number,
  ): AsyncGenerator<Batch & { upTo: number }> {
    const { options } = this.deps;
    const limits = {
      maxCount: options.batchMaxCount,
      maxBytes: options.batchMaxBytes,
      maxMessageBytes: options.parseLimits.maxBytes,
    };
    const smallBound = Math.max(1, Math.min(limits.maxMessageBytes, Math.floor(limits.maxBytes / limits.maxCount)));
    const uids = await session.uidsSince(lastUid);
    if (uids.length === 0) return;
    const byId = session.hasEmailIds;
    const large = byId ? null : new Set(await session.uidsSince(lastUid, smallBound));
    for (let start = 0; start < uids.length; start += limits.maxCount) {
      const chunk = uids.slice(start, start + limits.maxCount);
      const described = new Map(
        (await session.describe(large ? chunk.filter((uid) => large.has(uid)) : chunk)).map((m) => [m.uid, m]),
      );
      const stored = byId ? await this.storedCopies(server, mailbox, [...described.values()]) : new Set<string>();
      const listed: Listed[] = [];
      for (const uid of chunk) {
        const meta = described.get(uid);
        if (meta?.emailId && stored.has(meta.emailId)) continue; // a copy of a stored message
        if (meta) listed.push({ uid, size: meta.size, meta });
        else if (large && !large.has(uid)) listed.push({ uid, size: smallBound, meta: null });
        // A large one (or with ids, any one) that could not be described is gone (expunged meanwhile).
      }
      const planned = planBatches(listed, limits);
      const upTo = chunk[chunk.length - 1] as number;
      if (planned.length === 0) yield { fetch: [], tooLarge: [], upTo };
      for (const [i, batch] of planned.entries()) {
        const last = [...batch.fetch, ...batch.tooLarge].reduce((max, m) => Math.max(max, m.uid), 0);
        yield { ...batch, upTo: i === planned.length - 1 ? upTo : last };
      }
    }
  }

  /** The ids (X-GM-MSGID, EMAILID) among these messages' that this server has stored already from another folder. */
  private async storedCopies(server: EmailServerRow, mailbox: string, metas: MessageMeta[]): Promise<Set<string>> {
    const ids = metas.map((m) => m.emailId).filter((id): id is string => id !== null);
    return this.deps.store.messages.existingEmailIds(server.id, mailbox, ids);
  }

  /** Fetches a batch, parses it (in the worker pool) and looks up what the database knows of its keys. */
  private async lookUpBatch(session: ImapSession, server: EmailServerRow, batch: Batch): Promise<LookedUp> {
    const startedAt = performance.now();
    const sources = new Map<number, MessageSource>();
    for await (const m of session.fetchSources(batch.fetch.map((x) => x.uid))) sources.set(m.uid, m);
    const missing = batch.fetch.filter((x) => !sources.has(x.uid)).map((x) => x.uid);
    // Not sent: expunged meanwhile (then it is not there to describe either), or a server that
    // could not read it (kept as quarantined, so that the checkpoint never passes it silently).
    const unreadable = new Map((await session.describe(missing)).map((m) => [m.uid, m]));
    const tooLarge = new Set(batch.tooLarge.map((m) => m.uid));
    const ordered = [...batch.fetch, ...batch.tooLarge].sort((a, b) => a.uid - b.uid);
    const fetched: Fetched[] = [];
    const failures = new Map<number, ParseResult>();
    for (const listed of ordered) {
      const got = sources.get(listed.uid);
      if (got) {
        const meta = { uid: got.uid, size: got.source.length, internalDate: got.internalDate, emailId: got.emailId };
        fetched.push({ meta, source: got.source, header: null });
      } else if (tooLarge.has(listed.uid) && listed.meta) {
        fetched.push({ meta: listed.meta, source: null, header: await session.fetchHeader(listed.uid) });
      } else {
        const meta = unreadable.get(listed.uid);
        if (!meta) continue;
        failures.set(meta.uid, {
          ok: false,
          reason: 'fetch-failed',
          detail: 'the server sent no body for this message',
        });
        fetched.push({ meta, source: null, header: await session.fetchHeader(listed.uid) });
      }
    }
    return this.lookUp(server, fetched, failures, startedAt);
  }

  /**
   * Parses fetched messages (`failures` say why a message has no source) and looks up what the
   * database knows of their keys.
   */
  private async lookUp(
    server: EmailServerRow,
    fetched: Fetched[],
    failures: ReadonlyMap<number, ParseResult>,
    startedAt: number,
  ): Promise<LookedUp> {
    const { store, options } = this.deps;
    // A few at a time: small messages parse on this thread, large ones in the pool's workers.
    const parsed = await mapLimited(
      fetched,
      PARSE_CONCURRENCY,
      (f) =>
        failures.get(f.meta.uid) ?? parseFetched(this.deps.parser, f.source, f.meta.size, options.parseLimits.maxBytes),
    );
    const keys = parsed.map(lookupKeysOf);
    const known = await store.messages.existingDedupeKeys(
      server.id,
      keys.map((k) => k.dedupeKey).filter((k): k is string => k !== null),
    );
    const conversations = await store.messages.conversationsOf(server.tenantId, [
      ...new Set(keys.flatMap((k) => k.threadIds)),
    ]);
    return { startedAt, fetched, parsed, known, conversations };
  }

  /**
   * Decides each message of a batch in UID order (pure but for `memory`, which later batches of the
   * pass read): classification, dedupe, conversation, destinations.
   */
  private decideBatch(
    server: EmailServerRow,
    mailbox: string,
    uidValidity: number,
    lookedUp: LookedUp,
    memory: PassMemory,
    routing: Routing,
  ): BuiltMessage[] {
    const { options } = this.deps;
    const { fetched, parsed, known, conversations } = lookedUp;
    const conversationOf = (id: string): string | undefined => conversations.get(id) ?? memory.conversations.get(id);
    return fetched.map((f, i) => {
      const message = buildMessageRow({
        server,
        mailbox,
        uidValidity,
        meta: f.meta,
        source: f.source,
        header: f.header,
        parsed: parsed[i] as ParseResult,
        destinations: routing.destinations,
        defaultDestinationId: routing.defaultDestinationId,
        messageIdDomain: options.messageIdDomain,
        lookups: {
          isDuplicate: (key) => known.has(key) || memory.keys.has(key),
          conversationOf: (ids) => ids.map(conversationOf).find((c) => c !== undefined) ?? null,
        },
      });
      // Later messages of the pass see this one as stored.
      memory.keys.add(message.row.dedupeKey);
      if (message.row.messageIdHeader) {
        memory.conversations.set(message.row.messageIdHeader, message.row.conversationId);
      }
      return message;
    });
  }

  /**
   * Stores a decided batch and the new checkpoint in one transaction. Should that transaction
   * fail (a message the database refuses), the batch is stored message by message, and a message
   * that still cannot be stored is kept as quarantined: the mailbox never stalls behind it.
   */
  private async ingestBatch(
    server: EmailServerRow,
    mailbox: string,
    uidValidity: number,
    prepared: Pick<Prepared, 'startedAt' | 'upTo' | 'fetched' | 'built'>,
    result: SyncResult,
    log: Logger,
    commit?: CommitCheckpoint,
  ): Promise<StoredMessage[]> {
    const { fetched, built } = prepared;
    const lastUid = Math.max((fetched[fetched.length - 1] as Fetched).meta.uid, prepared.upTo);
    let inserted: Set<string>;
    try {
      inserted = await this.store(server, mailbox, uidValidity, built, fetched, lastUid, commit);
    } catch (err) {
      // The source store (directory, object store) failing is no answer about these messages:
      // the pass fails and is tried again, with nothing committed.
      if (isMailroomError(err, 'SOURCE_STORE_UNAVAILABLE')) throw err;
      log.warn({ err, uids: fetched.map((f) => f.meta.uid) }, 'batch could not be stored; storing message by message');
      inserted = new Set();
      for (const [i, message] of built.entries()) {
        const f = fetched[i] as Fetched;
        try {
          const one = await this.store(server, mailbox, uidValidity, [message], [f], f.meta.uid, commit);
          for (const id of one) inserted.add(id);
        } catch (single) {
          // The database failing is no answer about this message: the pass is tried again.
          if (isTransientStoreError(single) || isMailroomError(single, 'SOURCE_STORE_UNAVAILABLE')) throw single;
          log.error({ err: single, uid: f.meta.uid }, 'message could not be stored; quarantining it');
          const fallback = quarantineForStoreError(message, single);
          built[i] = fallback;
          try {
            for (const id of await this.store(server, mailbox, uidValidity, [fallback], [f], f.meta.uid, commit))
              inserted.add(id);
          } catch (quarantine) {
            if (isTransientStoreError(quarantine) || isMailroomError(quarantine, 'SOURCE_STORE_UNAVAILABLE'))
              throw quarantine;
            await this.skipUnstorable(server, mailbox, uidValidity, f.meta.uid, quarantine, log);
          }
        }
      }
    }
    ingestBatchSeconds.observe((performance.now() - prepared.startedAt) / 1000);
    const done: StoredMessage[] = [];
    const outcomes = new Map<string, number>();
    for (const message of built) {
      if (!inserted.has(message.row.id)) continue;
      const { id, uid, status } = message.row;
      done.push({ id, uid, status });
      const outcome = OUTCOME_OF_STATUS[status];
      if (outcome) outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
      result.stored += 1;
      if (status === 'quarantined') result.quarantined += 1;
      if (status === 'duplicate') result.duplicates += 1;
      if (message.destinationIds.length > 0) {
        result.routed += 1;
        this.deps.onRouted?.({
          tenantId: server.tenantId,
          serverId: server.id,
          messageId: id,
          destinationIds: message.destinationIds,
        });
      }
      if (status === 'heartbeat' && message.heartbeatToken) {
        this.deps.onHeartbeat?.({ serverId: server.id, token: message.heartbeatToken, receivedAt: new Date() });
      }
    }
    for (const [outcome, count] of outcomes) {
      inboundMessages.inc({ tenant_id: server.tenantId, server_id: server.id, outcome }, count);
    }
    return done;
  }

  /**
   * Passes a message the database refused even as a minimal quarantined row: the checkpoint moves
   * past it (it stays in the mailbox, untouched), with an alert that names it, in one transaction.
   * Should that fail too, the database itself is failing: the pass fails and is retried.
   */
  private async skipUnstorable(
    server: EmailServerRow,
    mailbox: string,
    uidValidity: number,
    uid: number,
    err: unknown,
    log: Logger,
  ): Promise<void> {
    const reason = (err instanceof Error ? err.message : String(err)).slice(0, 500);
    log.error({ err, uid }, 'message could not be stored even as quarantined; skipping it');
    await this.deps.store.transaction(async (tx) => {
      await tx.alerts.insert({
        id: newId(),
        tenantId: server.tenantId,
        serverId: server.id,
        kind: 'message-not-stored',
        message:
          `message UID ${uid} of ${mailbox} could not be stored, not even as quarantined (${reason}); ` +
          'it was skipped and stays in the mailbox',
        details: { mailbox, uidValidity, uid, error: reason },
      });
      await tx.checkpoints.put(server.id, mailbox, uidValidity, uid);
    });
  }

  /**
   * One transaction: messages, raw sources, deliveries in UID order, and the checkpoint. The
   * routing was read when the pass began: a destination deleted since then gets nothing, and a
   * message it alone was routed to is stored unrouted (`built` is updated after the commit).
   */
  private async store(
    server: EmailServerRow,
    mailbox: string,
    uidValidity: number,
    built: BuiltMessage[],
    fetched: Fetched[],
    lastUid: number,
    commit?: CommitCheckpoint,
  ): Promise<Set<string>> {
    const gone = new Set<string>();
    const sources = this.deps.store.sources;
    // A backend outside the database is written first (durably); the rows that name it commit after.
    const places = await sources.writeAhead(
      built.map((b, i) => ({
        ref: { tenantId: b.row.tenantId, messageId: b.row.id },
        raw: fetched[i]?.source ?? null,
      })),
    );
    const inline = sources.writeKind === 'postgres';
    const inserted = await this.deps.store.transaction(async (tx) => {
      gone.clear();
      const inserted = await tx.messages.insertBatch(
        built.map((b, i) => ({
          row: b.row,
          raw: inline ? (fetched[i]?.source ?? null) : null,
          place: places[i] ?? null,
          trace: b.trace,
        })),
      );
      const perDestination = new Map<string, string[]>();
      for (const b of built) {
        if (!inserted.has(b.row.id)) continue;
        for (const d of b.destinationIds) perDestination.set(d, [...(perDestination.get(d) ?? []), b.row.id]);
      }
      for (const [destinationId, ids] of [...perDestination].sort(([a], [b]) => a.localeCompare(b))) {
        const seqs = await tx.deliveries.append(destinationId, server.tenantId, ids);
        if (seqs === null) {
          gone.add(destinationId);
          continue;
        }
        // Webhooks (push delivery): the outbox rows commit with the deliveries; a no-op without a webhook URL.
        await tx.webhooks.enqueue(destinationId, seqs);
      }
      if (gone.size > 0) {
        await tx.messages.markUnrouted(
          built.filter((b) => inserted.has(b.row.id) && routedOnlyTo(b, gone)).map((b) => b.row.id),
        );
      }
      if (commit) await commit(tx);
      else await tx.checkpoints.put(server.id, mailbox, uidValidity, lastUid);
      return inserted;
    });
    // Written ahead for messages stored before (a duplicate UID): no row will ever name them.
    const unused = built.filter((b, i) => places[i] && !inserted.has(b.row.id));
    if (!inline && unused.length > 0) {
      await sources
        .discard(
          sources.writeKind,
          unused.map((b) => ({ tenantId: b.row.tenantId, messageId: b.row.id })),
        )
        .catch(() => undefined); // the sweeper removes them later
    }
    if (gone.size > 0) {
      for (const b of built) {
        if (routedOnlyTo(b, gone)) b.row.status = 'unrouted';
        b.destinationIds = b.destinationIds.filter((d) => !gone.has(d));
      }
    }
    return inserted;
  }
}
