import { MailroomError } from '../../shared/errors.js';
import { mapLimited } from '../../shared/map-limited.js';
import type { BlobBackend, ListedSource, SourceKind, SourceRef } from './source-backend.js';

/** [8] sources written to (or read from) a backend outside the database at once. */
const PUT_CONCURRENCY = 8;
/** [500] rows looked up per statement by the sweeper. */
const SWEEP_PAGE = 500;

/** Where a message's source went, as its row records it. */
export interface SourcePlace {
  kind: SourceKind;
  bytes: number;
}

/** A message (its tenant and id) and the source it came with. */
export interface SourceItem {
  ref: SourceRef;
  raw: Buffer | null;
}

type Query = <T>(sql: string, params?: unknown[]) => Promise<T[]>;

/** What a sweep found and did. */
export interface SweepReport {
  listed: number;
  removed: number;
}

/**
 * The raw sources of inbound messages, in whichever backend the operator chose
 * (MAILROOM_BLOB_STORE): PostgreSQL (`inbound_raw`, the default, written in the message's
 * transaction), a directory or an S3-compatible object store (written before it). Reads go to the
 * backend the row names, so sources stay readable while `mailroom blobs migrate` moves them.
 */
export class MessageSources {
  constructor(
    /** The backend new sources are written to. */
    readonly writeKind: SourceKind,
    private readonly backends: ReadonlyMap<Exclude<SourceKind, 'postgres'>, BlobBackend>,
    private readonly query: Query,
  ) {
    if (writeKind !== 'postgres' && !backends.has(writeKind)) {
      throw new Error(`sources are to be written to ${writeKind}, which is not configured`);
    }
  }

  /** Only PostgreSQL (tests, and an engine without MAILROOM_BLOB_DIR or MAILROOM_S3_*). */
  static inDatabase(query: Query): MessageSources {
    return new MessageSources('postgres', new Map(), query);
  }

  /** The backends configured besides PostgreSQL. */
  get external(): BlobBackend[] {
    return [...this.backends.values()];
  }

  backend(kind: Exclude<SourceKind, 'postgres'>): BlobBackend {
    const found = this.backends.get(kind);
    if (!found) {
      throw new MailroomError(
        'SOURCE_STORE_UNAVAILABLE',
        `message sources in ${kind} cannot be read: it is not configured`,
      );
    }
    return found;
  }

  /**
   * Writes the sources of messages about to be committed, when the backend is outside the database:
   * each durably, before the transaction (a failure throws SOURCE_STORE_UNAVAILABLE and nothing is
   * committed). Answers where each source is: for PostgreSQL, the caller writes it in the transaction.
   */
  async writeAhead(items: readonly SourceItem[]): Promise<Array<SourcePlace | null>> {
    const kind = this.writeKind;
    if (kind === 'postgres') return items.map((i) => (i.raw === null ? null : { kind, bytes: i.raw.length }));
    const backend = this.backend(kind);
    try {
      return await mapLimited(items, PUT_CONCURRENCY, async (i) => {
        if (i.raw === null) return null;
        await backend.put(i.ref, i.raw);
        return { kind, bytes: i.raw.length };
      });
    } catch (err) {
      throw unavailable(kind, 'written', err);
    }
  }

  /**
   * Removes sources written ahead whose messages were not committed (already stored: a duplicate
   * of a row inserted before). Never called on a failed commit: a commit whose answer was lost may
   * have happened, so those are left to the sweeper, which asks the database.
   */
  async discard(kind: SourceKind, refs: readonly SourceRef[]): Promise<void> {
    if (kind === 'postgres' || refs.length === 0) return;
    await this.remove(kind, refs);
  }

  /**
   * Reads a message's source from the backend its row names (null: `inbound_raw`, as before 0022).
   * When it is not there, the row is asked again: `mailroom blobs migrate` may have moved it between
   * the caller's read of the row and this one (the row then names the new backend).
   */
  async read(ref: SourceRef, kind: SourceKind | null): Promise<Buffer | null> {
    const found = await this.readFrom(ref, kind ?? 'postgres');
    if (found !== null) return found;
    const rows = await this.query<{ source_store: SourceKind | null }>(
      'SELECT source_store FROM inbound_messages WHERE id = $1',
      [ref.messageId],
    );
    const now = rows[0]?.source_store ?? null;
    if (now === null || now === (kind ?? 'postgres')) return null;
    return this.readFrom(ref, now);
  }

  private async readFrom(ref: SourceRef, kind: SourceKind): Promise<Buffer | null> {
    if (kind === 'postgres') {
      const rows = await this.query<{ raw: Buffer | Uint8Array }>('SELECT raw FROM inbound_raw WHERE message_id = $1', [
        ref.messageId,
      ]);
      const raw = rows[0]?.raw;
      if (raw === undefined) return null;
      // PGlite answers bytea as a Uint8Array: a Buffer for every reader (the parser streams it).
      return Buffer.isBuffer(raw) ? raw : Buffer.from(raw);
    }
    try {
      return await this.backend(kind).get(ref);
    } catch (err) {
      throw unavailable(kind, 'read', err);
    }
  }

  /** Deletes sources whose rows are gone (PostgreSQL's go with their rows). */
  async remove(kind: SourceKind, refs: readonly SourceRef[]): Promise<void> {
    if (kind === 'postgres' || refs.length === 0) return;
    try {
      await this.backend(kind).delete(refs);
    } catch (err) {
      throw unavailable(kind, 'deleted', err);
    }
  }

  /**
   * Removes orphans from the backends outside the database: sources older than `before` whose row
   * is gone or names another backend (a crash between the write and the commit, a migration that
   * moved it, a deletion that removed the row and was cut short). A young source may belong to a
   * transaction still committing, so it stays until a later sweep.
   */
  async sweep(before: Date, pageSize = SWEEP_PAGE): Promise<SweepReport> {
    const report: SweepReport = { listed: 0, removed: 0 };
    for (const backend of this.backends.values()) {
      let cursor: string | null = null;
      do {
        const page: { items: ListedSource[]; next: string | null } = await backend.list(cursor, pageSize);
        cursor = page.next;
        report.listed += page.items.length;
        const old = page.items.filter((s) => s.modifiedAt < before);
        if (old.length === 0) continue;
        const named = await this.query<{ id: string }>(
          `SELECT id FROM inbound_messages WHERE id = ANY($1::uuid[]) AND source_store = $2`,
          [old.map((s) => s.messageId), backend.kind],
        );
        const kept = new Set(named.map((r) => r.id));
        const orphans = old.filter((s) => !kept.has(s.messageId));
        await backend.delete(orphans);
        report.removed += orphans.length;
      } while (cursor !== null);
    }
    return report;
  }

  async close(): Promise<void> {
    for (const backend of this.backends.values()) await backend.close();
  }
}

/** SOURCE_STORE_UNAVAILABLE naming the backend and what could not be done. */
export function unavailable(kind: SourceKind, done: string, cause: unknown): MailroomError {
  if (cause instanceof MailroomError && cause.code === 'SOURCE_STORE_UNAVAILABLE') return cause;
  const reason = cause instanceof Error ? cause.message : String(cause);
  return new MailroomError(
    'SOURCE_STORE_UNAVAILABLE',
    `message sources could not be ${done} in ${kind} (${reason}); try again shortly`,
    { cause, details: { backend: kind } },
  );
}
