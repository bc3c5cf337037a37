/**
 * One session's view of its selected mailbox. Sequence numbers belong to the view, not to the
 * mailbox: a message another session expunged keeps its number here until this session is told
 * (`* n EXPUNGE`), and a new message gets one when the session is told `* n EXISTS`.
 */
import { formatFlags } from './response.js';
import { inSequenceSet, type SequenceRange } from './sequence-set.js';
import type { Mailbox, StoredMessage } from './store.js';

export interface ViewEntry {
  seq: number;
  message: StoredMessage;
}

export class MailboxView {
  private messages: StoredMessage[];
  /** The flags this session was last told about, to report changes made elsewhere. */
  private readonly reportedFlags = new Map<StoredMessage, string>();

  constructor(
    readonly mailbox: Mailbox,
    readonly readOnly: boolean,
  ) {
    this.messages = [...mailbox.messages];
    for (const message of this.messages) {
      this.reportedFlags.set(message, formatFlags(message.flags));
    }
  }

  get exists(): number {
    return this.messages.length;
  }

  entries(): ViewEntry[] {
    return this.messages.map((message, index) => ({ seq: index + 1, message }));
  }

  /** The messages a sequence set names, by UID or by sequence number, in sequence order. */
  select(ranges: readonly SequenceRange[], byUid: boolean): ViewEntry[] {
    const entries = this.entries();
    if (byUid) {
      const largest = entries.reduce((max, entry) => Math.max(max, entry.message.uid), 0);
      return entries.filter((entry) => inSequenceSet(ranges, entry.message.uid, largest));
    }
    return entries.filter((entry) => inSequenceSet(ranges, entry.seq, entries.length));
  }

  /** Records that the session was just told these flags (a FETCH or STORE answer). */
  flagsReported(message: StoredMessage): void {
    this.reportedFlags.set(message, formatFlags(message.flags));
  }

  /**
   * Brings the view up to date and returns the untagged responses that tell the client:
   * EXPUNGE (only when `expunges` is set, RFC 3501 forbids them during FETCH, STORE and SEARCH),
   * FETCH FLAGS for flags changed elsewhere, and EXISTS when messages arrived.
   */
  sync(expunges: boolean): string[] {
    const lines: string[] = [];
    const current = new Set(this.mailbox.messages);
    if (expunges) {
      for (let index = this.messages.length - 1; index >= 0; index--) {
        const message = this.messages[index];
        if (message && !current.has(message)) {
          this.messages.splice(index, 1);
          this.reportedFlags.delete(message);
          lines.push(`${index + 1} EXPUNGE`);
        }
      }
    }
    this.messages.forEach((message, index) => {
      const flags = formatFlags(message.flags);
      const reported = this.reportedFlags.get(message);
      if (current.has(message) && reported !== undefined && reported !== flags) {
        this.reportedFlags.set(message, flags);
        lines.push(`${index + 1} FETCH (UID ${message.uid} FLAGS ${flags})`);
      }
    });
    const known = new Set(this.messages);
    const arrived = this.mailbox.messages.filter((message) => !known.has(message));
    if (arrived.length) {
      for (const message of arrived) {
        this.messages.push(message);
        this.reportedFlags.set(message, formatFlags(message.flags));
      }
      lines.push(`${this.messages.length} EXISTS`);
    }
    return lines;
  }
}
