import { MailroomError } from '../shared/errors.js';
import type { InboundMessageRow } from '../store/rows.js';
import type { Store, StoreSession } from '../store/store.js';
import { actorDetail } from '../store/trace-events.js';
import { buildMessageRow, type MessageParser } from './message-record.js';
import { DEFAULT_INBOUND_OPTIONS } from './options.js';
import type { RoutedSignals } from './routed-signals.js';

/** Statuses an operator acts on: mail routing left for them. */
const HELD = new Set<InboundMessageRow['status']>(['unrouted', 'quarantined']);

/** What became of a held message: routed to these destinations, or deleted. */
export interface HeldOutcome {
  id: string;
  status: InboundMessageRow['status'] | 'deleted';
  destinationIds: string[];
}

/**
 * Unrouted and quarantined mail of a server, acted on by an operator: routed to a destination of
 * their choice, released (routed again by the server's rules of now, a quarantined one parsed
 * again from its stored source, after a fix), or deleted. Each action is traced on the message
 * and audited, in the transaction that makes it.
 */
export class HeldMail {
  constructor(
    private readonly store: Store,
    private readonly parser: MessageParser,
    private readonly signals: RoutedSignals,
    private readonly messageIdDomain: string = DEFAULT_INBOUND_OPTIONS.messageIdDomain,
  ) {}

  /** Routes a held message to one destination of the tenant (of this server or not). */
  async routeTo(tenantId: string, serverId: string, messageId: string, destinationId: string): Promise<HeldOutcome> {
    const outcome = await this.store.transaction(async (tx) => {
      const message = await this.requireHeld(tx, tenantId, serverId, messageId);
      if (!(await tx.destinations.get(tenantId, destinationId))) {
        throw new MailroomError('VALIDATION_FAILED', `'destinationId' names no destination of this tenant`, {
          field: 'destinationId',
        });
      }
      await this.deliver(tx, message, [destinationId]);
      await tx.trace.append([
        {
          tenantId,
          messageId,
          type: 'routed',
          detail: {
            destinations: [{ id: destinationId, operator: true }],
            previously: message.status,
            ...actorDetail(),
          },
        },
      ]);
      await this.audit(tx, message, 'message.routed', { destinationId, previously: message.status });
      return { id: messageId, status: 'routed' as const, destinationIds: [destinationId] };
    });
    this.signals.routed(outcome.destinationIds);
    return outcome;
  }

  /**
   * Routes a held message again by the server's rules of now (its destinations and default); a
   * quarantined one is parsed again from its stored source first. Refused while it would still
   * be held (the reason is in the answer).
   */
  async release(tenantId: string, serverId: string, messageId: string): Promise<HeldOutcome> {
    // The source is read before the transaction: its backend may be the database itself, whose
    // embedded form has one connection, which the transaction would hold (a read inside it waited
    // for the transaction's end: forever).
    const before = await this.requireHeld(this.store, tenantId, serverId, messageId);
    const raw = await this.store.sources.read({ tenantId, messageId }, before.sourceStore);
    const outcome = await this.store.transaction(async (tx) => {
      const message = await this.requireHeld(tx, tenantId, serverId, messageId);
      const server = await tx.servers.require(tenantId, serverId);
      if (raw === null) {
        throw new MailroomError(
          'MESSAGE_NOT_RELEASABLE',
          'the message was stored without its source (too large to fetch); it stays where it is',
        );
      }
      const destinations = (await tx.destinations.listByServer(serverId)).filter((d) => d.monitored);
      const built = buildMessageRow({
        server,
        mailbox: message.mailbox,
        uidValidity: message.uidValidity,
        meta: { uid: message.uid, size: message.size, internalDate: message.receivedAt, emailId: message.emailId },
        source: raw,
        header: null,
        parsed: await this.parser.parse(raw),
        destinations,
        defaultDestinationId: server.defaultDestinationId,
        messageIdDomain: this.messageIdDomain,
        // Released on purpose: never a duplicate of itself; threads as it was.
        lookups: { isDuplicate: () => false, conversationOf: () => message.conversationId },
      });
      if (built.row.status !== 'routed') {
        throw new MailroomError(
          'MESSAGE_NOT_RELEASABLE',
          built.row.status === 'quarantined'
            ? `the message still cannot be parsed (${built.row.quarantineReason ?? 'unknown'})`
            : 'no destination of the server matches its recipients and the server has no default destination; ' +
                'route it to a destination instead',
          { details: { status: built.row.status } },
        );
      }
      await tx.messages.replaceParsed(messageId, {
        ...built.row,
        id: messageId,
        conversationId: message.conversationId,
      });
      await this.deliver(tx, message, built.destinationIds);
      await tx.trace.append([
        {
          tenantId,
          messageId,
          type: 'released',
          detail: { previously: message.status, ...actorDetail() },
        },
        { tenantId, messageId, type: built.trace.type, detail: built.trace.detail },
      ]);
      await this.audit(tx, message, 'message.released', { previously: message.status, to: built.destinationIds });
      return { id: messageId, status: 'routed' as const, destinationIds: built.destinationIds };
    });
    this.signals.routed(outcome.destinationIds);
    return outcome;
  }

  /** Deletes a held message for good (its source too); the trace and the audit keep that it was. */
  async delete(tenantId: string, serverId: string, messageId: string): Promise<HeldOutcome> {
    return this.store.transaction(async (tx) => {
      const message = await this.requireHeld(tx, tenantId, serverId, messageId);
      await tx.messages.delete(messageId);
      await tx.trace.append([
        { tenantId, messageId, type: 'deleted', detail: { previously: message.status, ...actorDetail() } },
      ]);
      // The message id only: the audit log outlives mail (and erasure) and keeps no mail content.
      await this.audit(tx, message, 'message.deleted', { previously: message.status });
      return { id: messageId, status: 'deleted' as const, destinationIds: [] };
    });
  }

  private async deliver(tx: StoreSession, message: InboundMessageRow, destinationIds: string[]): Promise<void> {
    for (const destinationId of destinationIds) {
      const seqs = await tx.deliveries.append(destinationId, message.tenantId, [message.id]);
      if (seqs === null) throw new MailroomError('DESTINATION_NOT_FOUND', `destination ${destinationId} is gone`);
      await tx.webhooks.enqueue(destinationId, seqs);
    }
    await tx.messages.setStatus(message.id, 'routed');
  }

  private async audit(
    tx: StoreSession,
    message: InboundMessageRow,
    action: string,
    detail: Record<string, unknown>,
  ): Promise<void> {
    await tx.audit.record({
      tenantId: message.tenantId,
      action,
      targetKind: 'inbound-message',
      targetId: message.id,
      detail: { serverId: message.serverId, ...detail },
    });
  }

  private async requireHeld(
    tx: StoreSession,
    tenantId: string,
    serverId: string,
    messageId: string,
  ): Promise<InboundMessageRow> {
    await tx.servers.require(tenantId, serverId);
    const message = await tx.messages.lockHeld(tenantId, serverId, messageId);
    if (!message) {
      throw new MailroomError('MESSAGE_NOT_FOUND', `message ${messageId} is not on this server's list`);
    }
    if (!HELD.has(message.status)) {
      throw new MailroomError('MESSAGE_NOT_HELD', `message ${messageId} is ${message.status}: nothing to act on`, {
        details: { status: message.status },
      });
    }
    return message;
  }
}
