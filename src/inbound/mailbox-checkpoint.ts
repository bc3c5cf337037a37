import type { Logger } from '../shared/logger.js';
import type { EmailServerRow } from '../store/rows.js';
import { newId, type Store } from '../store/store.js';
import type { MailboxState } from './imap-session.js';
import type { SyncResult } from './mailbox-sync.js';

/** Reads the checkpoint; on a UIDVALIDITY change starts a rescan (dedupe keeps it harmless) and raises an alert. */
export async function readCheckpoint(
  store: Store,
  server: EmailServerRow,
  mailbox: string,
  state: MailboxState,
  result: SyncResult,
  log: Logger,
): Promise<{ lastUid: number; postProcessedUid: number }> {
  const cp = await store.checkpoints.get(server.id, mailbox);
  if (!cp) {
    await store.checkpoints.put(server.id, mailbox, state.uidValidity, 0);
    return { lastUid: 0, postProcessedUid: 0 };
  }
  if (cp.uidValidity === state.uidValidity) return { lastUid: cp.lastUid, postProcessedUid: cp.postProcessedUid };
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
  return { lastUid: 0, postProcessedUid: 0 };
}
