import { movesIntoWatched } from '../shared/imap-folders.js';
import type { Logger } from '../shared/logger.js';
import type { EmailServerRow, InboundMessageRow } from '../store/rows.js';
import type { Store } from '../store/store.js';
import type { ImapSession } from './imap-session.js';

/** [500] messages post-processed per pass after an interrupted one (the rest on the next passes). */
const LEFTOVER_POST_PROCESS_LIMIT = 500;

/** What post-processing needs of a stored message. */
export type StoredMessage = Pick<InboundMessageRow, 'id' | 'uid' | 'status'>;

/**
 * What is done to a mailbox's messages once they are stored (`seen`, `move:<folder>`, `delete`;
 * heartbeats are deleted), after the commit that stored them, and the progress mark that says how
 * far it got: a pass cut short leaves the rest to the next one, which finishes it first.
 */
export class PostProcessing {
  constructor(private readonly store: Store) {}

  /**
   * Runs post-processing left over by an interrupted pass (stored, but the action never ran, or
   * failed): the messages above the mailbox's progress mark, up to 500 a pass. Answers whether
   * none is left behind (only then may this pass move the mark further).
   */
  async finishLeftovers(
    session: ImapSession,
    server: EmailServerRow,
    mailbox: string,
    uidValidity: number,
    progress: { lastUid: number; postProcessedUid: number },
    log: Logger,
  ): Promise<boolean> {
    if (progress.postProcessedUid >= progress.lastUid) return true;
    const limit = LEFTOVER_POST_PROCESS_LIMIT;
    const rows = await this.store.messages.storedAfter(
      server.id,
      mailbox,
      uidValidity,
      progress.postProcessedUid,
      limit,
    );
    // All of them, or up to the last one listed when there are more.
    const uid = rows.length < limit ? progress.lastUid : (rows[rows.length - 1] as StoredMessage).uid;
    const done = await this.run(session, server, rows, { mailbox, uidValidity, uid }, log);
    return done && rows.length < limit;
  }

  /**
   * Runs the server's action (`seen`, `move:`, `delete`; heartbeats are deleted) on stored
   * messages, quarantined ones left where they are. On success, and when `upTo` is given, records
   * that every message up to `upTo.uid` is done. Never rejects; answers whether it succeeded.
   */
  async run(
    session: ImapSession,
    server: EmailServerRow,
    rows: StoredMessage[],
    upTo: { mailbox: string; uidValidity: number; uid: number } | null,
    log: Logger,
  ): Promise<boolean> {
    const eligible = rows.filter((r) => r.status !== 'quarantined');
    const heartbeats = eligible.filter((r) => r.status === 'heartbeat').map((r) => r.uid);
    const others = eligible.filter((r) => r.status !== 'heartbeat').map((r) => r.uid);
    try {
      if (heartbeats.length > 0) await session.delete(heartbeats);
      let action = server.postProcess;
      if (movesIntoWatched(action, server.imapFolders.length > 0 ? server.imapFolders : ['INBOX'])) {
        // Refused when saved (accounts/server-form.ts); a server saved before that check would
        // move its mail round in a circle, each turn stored again: marked read instead.
        log.warn({ action }, 'not moving mail into a folder this server watches; marking it read instead');
        action = 'seen';
      }
      if (action === 'seen') await session.markSeen(others);
      else if (action === 'delete') await session.delete(others);
      else if (action.startsWith('move:')) await session.move(others, action.slice('move:'.length));
      if (upTo) await this.store.checkpoints.postProcessedUpTo(server.id, upTo.mailbox, upTo.uidValidity, upTo.uid);
      return true;
    } catch (err) {
      // The messages are stored; the action is retried on the next pass (running it twice is harmless).
      log.warn({ err, action: server.postProcess, count: eligible.length }, 'post-processing failed; will retry');
      return false;
    }
  }
}
