/**
 * Where the raw sources of stored messages live. A message row names its backend
 * (`inbound_messages.source_store`); a source is found by the message's tenant and id, so the
 * name of an object says whose it is (`<tenantId>/<messageId>`) and erasure, export and the
 * sweeper need no other index.
 *
 * Exactly once: a backend outside the database is written (durably) before the transaction that
 * commits the message row; a crash between the two leaves at most an orphan, which the sweeper
 * removes once it is older than a grace period and no row names it. A source is deleted only
 * after the row that names it is gone, so a message never lacks its source.
 */

export type SourceKind = 'postgres' | 'directory' | 's3';

export const SOURCE_KINDS: readonly SourceKind[] = ['postgres', 'directory', 's3'];

/** One source, named by its message's tenant and id. */
export interface SourceRef {
  tenantId: string;
  messageId: string;
}

/** A source as the sweeper lists it. */
export interface ListedSource extends SourceRef {
  /** When it was last written (the sweeper leaves young ones alone: their row may be committing). */
  modifiedAt: Date;
  bytes: number;
}

/**
 * A backend outside the database (a directory, an object store). PostgreSQL keeps sources in
 * `inbound_raw`, written in the message's own transaction (see SourceStore).
 */
export interface BlobBackend {
  readonly kind: Exclude<SourceKind, 'postgres'>;
  /** Writes durably (answers only once the bytes are safe); overwrites a source of the same name. */
  put(ref: SourceRef, data: Buffer): Promise<void>;
  /** The source, or null when there is none. */
  get(ref: SourceRef): Promise<Buffer | null>;
  /** Deletes these sources; one that is not there is no error. */
  delete(refs: readonly SourceRef[]): Promise<void>;
  /**
   * Up to `limit` sources in name order after `after` (a cursor from the previous page, null to
   * start), and the cursor of the next page (null at the end). For the sweeper and migrations.
   */
  list(after: string | null, limit: number): Promise<{ items: ListedSource[]; next: string | null }>;
  /** Releases connections; idempotent. */
  close(): Promise<void>;
}

/** `<tenantId>/<messageId>`: both are UUIDs (checked, so a name never climbs out of its place). */
export function sourceName(ref: SourceRef): string {
  if (!UUID.test(ref.tenantId) || !UUID.test(ref.messageId)) {
    throw new Error(`source names are made of UUIDs (got ${ref.tenantId}/${ref.messageId})`);
  }
  return `${ref.tenantId.toLowerCase()}/${ref.messageId.toLowerCase()}`;
}

/** The ref a name stands for, or null for a name that is not one of ours. */
export function refOfName(name: string): SourceRef | null {
  const [tenantId, messageId, ...rest] = name.split('/');
  if (rest.length > 0 || !tenantId || !messageId || !UUID.test(tenantId) || !UUID.test(messageId)) return null;
  return { tenantId, messageId };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
