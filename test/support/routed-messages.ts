import { randomUUID } from 'node:crypto';
import type { NewInboundMessage } from '../../src/store/inbound-repositories.js';
import type { Store } from '../../src/store/store.js';

export interface RouteTarget {
  tenantId: string;
  serverId: string;
  destinationId: string;
}

/** UIDs given so far in this process (a server's messages have distinct UIDs). */
let lastUid = 0;

/** A routed message row as inbound stores it (small, no raw source). */
export function routedMessageRow(target: RouteTarget, n: number): NewInboundMessage {
  const id = randomUUID();
  lastUid += 1;
  return {
    id,
    tenantId: target.tenantId,
    serverId: target.serverId,
    mailbox: 'INBOX',
    uidValidity: 1,
    uid: lastUid,
    status: 'routed',
    quarantineReason: null,
    messageIdHeader: `${id}@example.net`,
    dedupeKey: `mid:${id}@example.net`,
    conversationId: randomUUID(),
    subject: `Message ${n}`,
    fromAddress: 'jane@example.net',
    fromName: 'Jane Doe',
    recipients: { to: [], cc: [], deliveredTo: [], xOriginalTo: [] },
    sentAt: null,
    receivedAt: new Date(),
    size: 100,
    classification: { autoReply: false, bounce: false, loop: false, reasons: [] },
    inReplyTo: null,
    references: [],
    bodyText: `Hello ${n}`,
    bodyHtml: null,
    attachments: [],
  };
}

/**
 * Stores `count` messages routed to the destination as inbound's routing transaction does:
 * the messages, their deliveries (next `seq`s) and, if the destination has a webhook, its outbox
 * rows, in one transaction per `batch`. Answers the `seq`s given.
 */
export async function routeMessages(store: Store, target: RouteTarget, count: number, batch = 500): Promise<number[]> {
  const seqs: number[] = [];
  for (let done = 0; done < count; done += batch) {
    const rows = Array.from({ length: Math.min(batch, count - done) }, (_, i) =>
      routedMessageRow(target, done + i + 1),
    );
    await store.transaction(async (tx) => {
      await tx.messages.insertBatch(rows.map((row) => ({ row, raw: null })));
      const given = await tx.deliveries.append(
        target.destinationId,
        target.tenantId,
        rows.map((r) => r.id),
      );
      if (!given) throw new Error(`destination ${target.destinationId} is gone`);
      await tx.webhooks.enqueue(target.destinationId, given);
      seqs.push(...given);
    });
  }
  return seqs;
}
