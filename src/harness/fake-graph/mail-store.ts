import { randomBytes } from 'node:crypto';

/**
 * The mailboxes of the fake Microsoft Graph: messages per user and folder, with a change counter
 * for delta queries. Every change (a message arriving, read, moved, deleted) takes the next
 * sequence number; a delta round lists the changes between two numbers. `resetSyncState()` makes
 * every delta and skip token issued before unknown (the service answers 410 to them).
 */

export interface FakeMessage {
  /** Immutable: the fake gives every message one id for its whole life, as `IdType="ImmutableId"` does. */
  id: string;
  user: string;
  folder: string;
  raw: Buffer;
  isRead: boolean;
  receivedAt: Date;
  /** Sequence number of its last change. */
  changed: number;
}

/** A message gone from a folder (deleted or moved away), remembered for delta rounds. */
interface Removal {
  id: string;
  user: string;
  folder: string;
  changed: number;
}

/** What a delta or skip token holds (base64url JSON; opaque to clients, as Graph's are). */
export interface DeltaState {
  /** The generation it was issued in (see resetSyncState). */
  g: number;
  user: string;
  folder: string;
  /** Changes after this number … */
  since: number;
  /** … up to this one (fixed when the round began). */
  upTo: number;
  /** Within the round: changes up to this one were listed already. */
  after: number;
}

export function encodeState(state: DeltaState): string {
  return Buffer.from(JSON.stringify(state)).toString('base64url');
}

export function decodeState(token: string): DeltaState | null {
  try {
    const s = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as Partial<DeltaState>;
    const numbers = [s.g, s.since, s.upTo, s.after].every((n) => typeof n === 'number');
    return numbers && typeof s.user === 'string' && typeof s.folder === 'string' ? (s as DeltaState) : null;
  } catch {
    return null;
  }
}

/** The well-known folder names the fake knows (https://learn.microsoft.com/graph/api/resources/mailfolder). */
export const WELL_KNOWN_FOLDERS = ['inbox', 'sentitems', 'deleteditems', 'archive', 'drafts', 'junkemail'];

export class MailStore {
  private seq = 0;
  generation = 1;
  private readonly messages = new Map<string, FakeMessage>();
  private readonly removals: Removal[] = [];

  constructor(private readonly users: Set<string>) {}

  hasUser(user: string): boolean {
    return this.users.has(user.toLowerCase());
  }

  addUser(user: string): void {
    this.users.add(user.toLowerCase());
  }

  /** Puts a message in a folder (as delivery would); answers its id. */
  deliver(user: string, raw: Buffer | string, folder = 'inbox'): string {
    const id = `AAMk${randomBytes(18).toString('base64url')}`;
    this.messages.set(id, {
      id,
      user: user.toLowerCase(),
      folder: folder.toLowerCase(),
      raw: Buffer.isBuffer(raw) ? raw : Buffer.from(raw),
      isRead: false,
      receivedAt: new Date(),
      changed: ++this.seq,
    });
    return id;
  }

  get(user: string, id: string): FakeMessage | undefined {
    const m = this.messages.get(id);
    return m && m.user === user.toLowerCase() ? m : undefined;
  }

  list(user: string, folder = 'inbox'): FakeMessage[] {
    const u = user.toLowerCase();
    const f = folder.toLowerCase();
    return [...this.messages.values()].filter((m) => m.user === u && m.folder === f);
  }

  markRead(m: FakeMessage, isRead: boolean): void {
    m.isRead = isRead;
    m.changed = ++this.seq;
  }

  move(m: FakeMessage, folder: string): void {
    this.removals.push({ id: m.id, user: m.user, folder: m.folder, changed: ++this.seq });
    m.folder = folder.toLowerCase();
    m.changed = ++this.seq;
  }

  delete(m: FakeMessage): void {
    this.messages.delete(m.id);
    this.removals.push({ id: m.id, user: m.user, folder: m.folder, changed: ++this.seq });
  }

  /** Every token issued so far is forgotten: their next use answers 410 Gone. */
  resetSyncState(): void {
    this.generation += 1;
  }

  /** A new round over a folder: from nothing (`since` 0) or from a delta token's number. */
  round(user: string, folder: string, since: number): DeltaState {
    return {
      g: this.generation,
      user: user.toLowerCase(),
      folder: folder.toLowerCase(),
      since,
      upTo: this.seq,
      after: since,
    };
  }

  /**
   * One page of a round: the changes numbered in (max(since, after), upTo], oldest change first,
   * at most `size`; a first round (since 0) lists present messages only, as the service does (a
   * message deleted before the first round is not reported). Answers the page and the state after it.
   */
  page(state: DeltaState, size: number): { messages: FakeMessage[]; removed: string[]; next: DeltaState | null } {
    const from = Math.max(state.since, state.after);
    type Change = { changed: number; message?: FakeMessage; removed?: string };
    const changes: Change[] = [];
    for (const m of this.messages.values()) {
      if (m.user === state.user && m.folder === state.folder && m.changed > from && m.changed <= state.upTo) {
        changes.push({ changed: m.changed, message: m });
      }
    }
    if (state.since > 0) {
      for (const r of this.removals) {
        if (r.user === state.user && r.folder === state.folder && r.changed > from && r.changed <= state.upTo) {
          changes.push({ changed: r.changed, removed: r.id });
        }
      }
    }
    changes.sort((a, b) => a.changed - b.changed);
    const taken = changes.slice(0, size);
    const more = changes.length > size;
    const last = taken.length > 0 ? (taken[taken.length - 1] as Change).changed : state.upTo;
    return {
      messages: taken.flatMap((c) => (c.message ? [c.message] : [])),
      removed: taken.flatMap((c) => (c.removed !== undefined ? [c.removed] : [])),
      next: more ? { ...state, after: last } : null,
    };
  }
}
