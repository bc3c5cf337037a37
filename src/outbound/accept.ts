import { randomUUID } from 'node:crypto';
import { actorDetail } from '../store/trace-events.js';
import type { Clock } from '../shared/clock.js';
import { isMailroomError, MailroomError } from '../shared/errors.js';
import { canonicalMailAddress } from '../shared/mail-address.js';
import { ownMessageId } from '../shared/mail-headers.js';
import { validate } from '../shared/validation.js';
import { queuedRow, type EmailServerRow, type OutboundMessageRow } from '../store/rows.js';
import type { Store } from '../store/store.js';
import type { AcceptedRow, SendingDestination } from '../store/outbound-messages.js';
import type { AccountQueue } from './account-queue.js';
import { composeMessage } from './compose.js';
import { GroupCommit } from './group-commit.js';
import type { OutboundOptions } from './options.js';
import { SendInput, type OutboundView } from './schemas.js';
import type { Spool, SpoolDraft } from './spool.js';
import { outboundView } from './views.js';

/** Fills a response file for a reply (the templates module); absent until it is wired. */
export type ResponseRenderer = (request: {
  tenantId: string;
  destinationId: string;
  file: string;
  name: string;
  messageId?: string | undefined;
  agent?: SendInput['agent'];
}) => Promise<{
  text?: string | undefined;
  html?: string | undefined;
  attachments: Array<{ filename: string; contentType: string; content: Buffer; cid?: string | undefined }>;
}>;

export interface AcceptDeps {
  store: Store;
  spool: Spool;
  clock: Clock;
  /** This instance's id: written into the loop header and the status rows. */
  instanceId: string;
  options: Pick<OutboundOptions, 'maxAttachmentBytes' | 'messageIdDomain'>;
  renderResponse?: ResponseRenderer | undefined;
  /** The outbound side's queues, by server id (read only here). */
  queues: ReadonlyMap<string, AccountQueue>;
  /** The queue of a server, made when it has none yet. */
  queueFor: (server: EmailServerRow) => AccountQueue;
}

/**
 * Longest an accepted message's status row waits for the rows of other accepts under way, ms, so
 * that one insert (one synchronous commit) covers them. A lone accept does not wait. The wait is
 * most of an accept's latency, and with a given number of requests in flight it caps the rate:
 * in the outbound benchmark (16 in flight) 2 ms gave 0.46-0.49 of the baseline where 5 ms gave
 * 0.42-0.44 (accept p50 4-5 ms instead of 7-8), for more commits (more CPU per message).
 */
const ACCEPT_DELAY_MS = 2;

/** Most destinations remembered for accepts (the copies are dropped all at once beyond it). */
const DESTINATION_CACHE_SIZE = 10_000;

/** A send request checked and composed, before its status row and spool file are written. */
interface PreparedAccept {
  row: OutboundMessageRow;
  /** Its trace events (accepted, rendered; the answered message's reply-accepted), written with the row. */
  trace: NonNullable<AcceptedRow['trace']>;
  raw: Buffer;
  envelope: { from: string; to: string[] };
  queue: AccountQueue;
}

/**
 * Accepts send requests: checks one against its destination, composes the message (a reply's
 * response file rendered), and resolves once its status row and spool file are written; then it
 * is in its account's queue.
 */
export class Acceptor {
  private readonly spool: Spool;
  private readonly clock: Clock;
  private readonly options: AcceptDeps['options'];
  private readonly queues: ReadonlyMap<string, AccountQueue>;
  /** Accepts under way: the status-row insert waits briefly while others than its own rows are. */
  private accepting = 0;
  /** Status rows of accepted messages, inserted together when requests arrive together. */
  private readonly accepted: GroupCommit<AcceptedRow, Set<string>>;
  /**
   * Destinations as last read by an accept, by `tenantId/destinationId`: the next accept composes
   * from the copy, and its status row is inserted only if the row version is unchanged.
   */
  private readonly destinations = new Map<string, SendingDestination>();

  constructor(private readonly deps: AcceptDeps) {
    this.spool = deps.spool;
    this.clock = deps.clock;
    this.options = deps.options;
    this.queues = deps.queues;
    this.accepted = new GroupCommit(
      (rows) => deps.store.outbound.insertMany(rows),
      500,
      ACCEPT_DELAY_MS,
      (waiting) => this.accepting > waiting,
    );
  }

  /** Accepts a message for sending: 202 semantics — it is on disk when this resolves. */
  async accept(tenantId: string, destinationId: string, body: unknown): Promise<OutboundView> {
    const input = validate(SendInput, body);
    const key = `${tenantId}/${destinationId}`;
    const remembered = this.destinations.get(key);
    if (remembered) {
      // Composed from the remembered destination; the status row goes in only if the destination
      // row is still that version. Otherwise it is read again and the message composed again.
      const view = await this.acceptFor(tenantId, input, remembered, remembered.version).catch((err: unknown) => {
        // The remembered server may be gone with a change of the destination: decided on a fresh read.
        if (isMailroomError(err, 'SERVER_NOT_FOUND')) return null;
        throw err;
      });
      if (view) return view;
      this.destinations.delete(key);
    }
    const destination = await this.deps.store.outbound.sendingDestination(tenantId, destinationId);
    if (!destination)
      throw new MailroomError('DESTINATION_NOT_FOUND', `destination ${destinationId} does not exist in this tenant`);
    if (this.destinations.size >= DESTINATION_CACHE_SIZE) this.destinations.clear();
    this.destinations.set(key, destination);
    // Read just now: inserted without the version check, as any read-then-insert.
    const view = await this.acceptFor(tenantId, input, destination, null);
    if (!view) throw new Error('status row not inserted without a version check');
    return view;
  }

  /**
   * Accepts `input` from `destination`; null (nothing written) when `version` is given and the
   * destination row no longer has it.
   */
  private async acceptFor(
    tenantId: string,
    input: SendInput,
    destination: SendingDestination,
    version: string | null,
  ): Promise<OutboundView | null> {
    this.accepting += 1;
    try {
      return await this.prepareAndSpool(tenantId, input, destination, version);
    } finally {
      this.accepting -= 1;
    }
  }

  private async prepareAndSpool(
    tenantId: string,
    input: SendInput,
    destination: SendingDestination,
    version: string | null,
  ): Promise<OutboundView | null> {
    const { store } = this.deps;
    const { row, raw, envelope, queue, trace } = await this.prepareAccept(tenantId, input, destination);
    const { id, destinationId, serverId, messageIdHeader: messageId } = row;
    // The status row and the spool file are written at the same time; the file enters the queue
    // (where the drainer may take it at once) only once the row is in. If the row is not inserted
    // (the destination changed meanwhile), the file is given up; if the spool refuses the
    // message, the row goes again: nothing was accepted.
    const inserting = this.accepted.add({ row, destinationVersion: version, trace });
    // Its failure is handled below, once the spool write is over: a database that fails first
    // (an outage) must not be an unhandled rejection meanwhile, which ends the process.
    inserting.catch(() => undefined);
    let draft: SpoolDraft;
    try {
      draft = await this.spool.write(
        {
          id,
          tenantId,
          accountId: serverId,
          destinationId,
          instanceId: this.deps.instanceId,
          envelope,
          messageId,
          createdAt: new Date(this.clock.now()).toISOString(),
        },
        raw,
      );
    } catch (err) {
      const inserted = await inserting.catch(() => null);
      if (inserted?.has(id)) await store.outbound.delete(id).catch(() => undefined);
      throw err;
    }
    let inserted: Set<string>;
    try {
      inserted = await inserting;
    } catch (err) {
      await this.spool.discard(draft).catch(() => undefined);
      throw err;
    }
    if (!inserted.has(id)) {
      await this.spool.discard(draft).catch(() => undefined);
      return null;
    }
    let spooled;
    try {
      spooled = await this.spool.commit(draft);
    } catch (err) {
      await store.outbound.delete(id).catch(() => undefined);
      throw err;
    }
    queue.enqueued(spooled.item, { header: spooled.header, raw });
    return outboundView(row);
  }

  /** Validates a send request against its destination and composes the message and its status row. */
  private async prepareAccept(
    tenantId: string,
    input: SendInput,
    destination: SendingDestination,
  ): Promise<PreparedAccept> {
    const { store } = this.deps;
    const destinationId = destination.id;
    if (!destination.outgoing || destination.serverId === null) {
      this.destinations.delete(`${tenantId}/${destinationId}`);
      throw new MailroomError(
        'NOT_AVAILABLE_FOR_OUTGOING',
        `destination '${destination.name}' is not available for outgoing mail; enable "outgoing" and give it an e-mail server`,
      );
    }
    // A server in use by a destination cannot be deleted: an existing queue of this tenant's is proof enough.
    const known = this.queues.get(destination.serverId);
    const queue =
      known?.tenantId === tenantId
        ? known
        : await store.servers.get(tenantId, destination.serverId).then((row) => row && this.queueFor(row));
    if (!queue) throw new MailroomError('SERVER_NOT_FOUND', 'the destination’s e-mail server does not exist');

    let to = input.to ?? [];
    let subject = input.subject ?? '';
    let inReplyTo: string | undefined;
    let references: string[] | undefined;
    let conversationId: string | null = null;
    if (input.inReplyTo) {
      const original = await store.messages.get(tenantId, input.inReplyTo);
      if (!original) {
        throw new MailroomError('VALIDATION_FAILED', `'inReplyTo' names no inbound message of this tenant`, {
          field: 'inReplyTo',
        });
      }
      conversationId = original.conversationId;
      if (original.messageIdHeader) {
        inReplyTo = original.messageIdHeader;
        references = [...original.references, original.messageIdHeader];
      }
      if (to.length === 0 && original.fromAddress) to = [original.fromAddress];
      const base = input.subject ?? original.subject;
      subject = /^\s*re\s*:/i.test(base) ? base : `Re: ${base}`;
    }
    // Addresses in their stored form (NFC, the domain in Unicode): the transport writes each
    // domain as punycode for a server without SMTPUTF8.
    to = to.map(storedAddress);
    const cc = (input.cc ?? []).map(storedAddress);
    const bcc = (input.bcc ?? []).map(storedAddress);
    const recipients = [...to, ...cc, ...bcc];
    if (recipients.length === 0)
      throw new MailroomError('VALIDATION_FAILED', `'to' needs at least one address`, { field: 'to' });

    let text = input.text;
    let html = input.html;
    const attachments: Array<{ filename: string; contentType: string; content: Buffer; cid?: string | undefined }> = (
      input.attachments ?? []
    ).map((a) => ({
      filename: a.filename,
      contentType: a.contentType,
      content: Buffer.from(a.contentBase64, 'base64'),
    }));
    if (input.response) {
      if (!this.deps.renderResponse) {
        throw new MailroomError('VALIDATION_FAILED', 'response files are not available in this engine', {
          field: 'response',
        });
      }
      const rendered = await this.deps.renderResponse({
        tenantId,
        destinationId,
        file: input.response.file,
        name: input.response.name,
        ...(input.response.group !== undefined && { group: input.response.group }),
        messageId: input.inReplyTo,
        agent: input.agent,
      });
      text = text ?? rendered.text;
      html = html ?? rendered.html;
      attachments.push(...rendered.attachments);
    }
    if (text === undefined && html === undefined) {
      throw new MailroomError('VALIDATION_FAILED', `give 'text', 'html' or a 'response'`, { field: 'text' });
    }
    const total = attachments.reduce((n, a) => n + a.content.length, 0);
    if (total > this.options.maxAttachmentBytes) {
      throw new MailroomError(
        'VALIDATION_FAILED',
        `attachments total ${total} bytes, more than ${this.options.maxAttachmentBytes}`,
        {
          field: 'attachments',
        },
      );
    }

    const id = randomUUID();
    const messageId = ownMessageId(id, destination.address, this.options.messageIdDomain);
    const { raw, envelope } = await composeMessage({
      // The From text is the alias customers see; without one the address stands alone (the
      // destination's name is an administrator's label, not meant for customers).
      from: { name: destination.fromText, address: destination.address },
      to,
      cc,
      bcc,
      subject,
      text,
      html,
      attachments,
      messageId,
      date: new Date(this.clock.now()),
      inReplyTo,
      references,
      loopValue: this.deps.instanceId,
    });
    const row = queuedRow(
      {
        id,
        tenantId,
        destinationId,
        serverId: destination.serverId,
        messageIdHeader: messageId,
        conversationId,
        subject: subject.replace(/[\r\n]+/g, ' '),
        recipients,
        instanceId: this.deps.instanceId,
      },
      new Date(this.clock.now()),
    );
    const trace: Array<PreparedAccept['trace'][number]> = [
      {
        messageId: null,
        type: 'accepted',
        detail: {
          ...actorDetail(),
          destinationId,
          serverId: destination.serverId,
          recipients: recipients.length,
          ...(input.inReplyTo && { inReplyTo: input.inReplyTo }),
        },
      },
    ];
    if (input.response) {
      trace.push({
        messageId: null,
        type: 'rendered',
        detail: {
          file: input.response.file,
          name: input.response.name,
          ...(input.response.group !== undefined && { group: input.response.group }),
        },
      });
    }
    if (input.inReplyTo) {
      trace.push({ messageId: input.inReplyTo, type: 'reply-accepted', detail: { outboundId: id, ...actorDetail() } });
    }
    return { row, raw, envelope, queue, trace };
  }

  private queueFor(server: EmailServerRow): AccountQueue {
    return this.deps.queueFor(server);
  }
}

/** An address in the form Mailroom stores (see shared/mail-address.ts); one it cannot read as it came. */
function storedAddress(address: string): string {
  return canonicalMailAddress(address) ?? address;
}
