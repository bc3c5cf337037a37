import type { Spool, SpoolHeader, SpoolItem } from './spool.js';

/** A budget of message bytes held in memory between spooling and delivery, shared by every queue. */
export interface SpooledInMemory {
  /** Bytes held now. */
  used: number;
  /** Most bytes held at once; messages beyond it are read back from the spool. */
  readonly limit: number;
}

/** A queued message's header and bytes, as spooled. */
export interface SpooledMessage {
  header: SpoolHeader;
  raw: Buffer;
}

/**
 * One account's queue folder as the queue knows it, oldest first (by file name, the FIFO order),
 * without duplicates, and the way to each message's bytes: those of a message accepted by this
 * process are kept in memory while the shared budget allows (sent without being read back), the
 * others are read from the spool, the next one while the current one is on its way.
 */
export class QueuedMessages {
  private readonly list: SpoolItem[] = [];
  private readonly names = new Set<string>();
  /** Messages accepted by this process, by file name: the bytes that were spooled. */
  private readonly held = new Map<string, SpooledMessage>();
  /** A file read ahead of its turn. */
  private ahead: { item: SpoolItem; read: Promise<SpooledMessage> } | null = null;

  /**
   * @param skip names never to queue (delivered files still on their way out of the queue folder)
   */
  constructor(
    private readonly spool: Spool,
    private readonly memory: SpooledInMemory,
    private readonly skip: (name: string) => boolean,
  ) {}

  /** Oldest first. */
  get items(): readonly SpoolItem[] {
    return this.list;
  }

  get length(): number {
    return this.list.length;
  }

  /** Adds a message found in, or just written to, the queue folder; with its bytes, they are kept while the budget allows. */
  add(item: SpoolItem, message?: SpooledMessage): void {
    if (this.names.has(item.name) || this.skip(item.name)) return;
    if (message && this.memory.used + message.raw.length <= this.memory.limit) {
      this.memory.used += message.raw.length;
      this.held.set(item.name, message);
    }
    this.names.add(item.name);
    let i = this.list.length;
    while (i > 0 && (this.list[i - 1] as SpoolItem).name > item.name) i -= 1;
    if (i === this.list.length) this.list.push(item);
    else this.list.splice(i, 0, item);
  }

  /** The message left the queue (delivered, dead-lettered, gone); its bytes leave the budget. */
  remove(item: SpoolItem): void {
    this.take(item);
    if (!this.names.delete(item.name)) return;
    // Nearly always the oldest: shift() is O(1) in V8, splice(0, 1) copies the whole queue
    // (18 µs a message at 5,000 waiting, measured; a drain after a long outage is quadratic).
    if (this.list[0]?.name === item.name) {
      this.list.shift();
      return;
    }
    const i = this.list.findIndex((p) => p.name === item.name);
    if (i >= 0) this.list.splice(i, 1);
  }

  /** A message's header and bytes: from memory, from the read ahead, or read (and verified) now. */
  read(item: SpoolItem): Promise<SpooledMessage> {
    const held = this.take(item);
    if (held) return Promise.resolve(held);
    const ahead = this.ahead;
    this.ahead = null;
    return ahead?.item === item ? ahead.read : this.spool.read(item);
  }

  /** Starts reading the file of the next message that is `due`, while `current` is on its way (one at a time). */
  readAhead(current: SpoolItem, due: (item: SpoolItem) => boolean): void {
    const next = this.list.find((i) => i !== current && due(i));
    if (!next || this.ahead?.item === next || this.held.has(next.name)) return;
    const read = this.spool.read(next);
    read.catch(() => undefined); // handled when the message's turn comes
    this.ahead = { item: next, read };
  }

  /** The bytes of `item` held in memory, if any; they leave the budget. */
  private take(item: SpoolItem): SpooledMessage | undefined {
    const held = this.held.get(item.name);
    if (!held) return undefined;
    this.held.delete(item.name);
    this.memory.used -= held.raw.length;
    return held;
  }
}
