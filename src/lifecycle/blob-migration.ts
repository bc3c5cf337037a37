import { MailroomError } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import { mapLimited } from '../shared/map-limited.js';
import type { SourceToMove } from '../store/source-moves.js';
import { unavailable } from '../store/sources/message-sources.js';
import { SOURCE_KINDS, type SourceKind, type SourceRef } from '../store/sources/source-backend.js';
import type { Store } from '../store/store.js';

/** [100] sources moved per batch (one transaction switches their rows). */
export const DEFAULT_MIGRATE_BATCH = 100;
/** [8] sources read and written at once. */
const CONCURRENCY = 8;

export interface MigrationProgress {
  /** Sources not in the target when the run started. */
  total: number;
  totalBytes: number;
  moved: number;
  movedBytes: number;
  /** Rows naming a backend that does not hold their source (reported, left as they are). */
  missing: number;
  /** Rows changed while their source was copied (deleted, stripped): left to the sweeper. */
  skipped: number;
}

export interface MigrationRequest {
  to: string;
  /** [100] sources per batch. */
  batchSize?: number | undefined;
  /** Called after each batch. */
  onProgress?: ((progress: MigrationProgress) => void) | undefined;
}

export interface MigrationReport extends MigrationProgress {
  to: SourceKind;
  /** Ids of the messages whose source is missing (at most 100 listed). */
  missingIds: string[];
  /** Set when new sources are written elsewhere (MAILROOM_BLOB_STORE is not the target). */
  note?: string;
}

/** What MAILROOM_* a backend needs, for the error that names what to set. */
const SETTING: Record<SourceKind, string> = {
  postgres: '',
  directory: 'MAILROOM_BLOB_DIR',
  s3: 'MAILROOM_S3_BUCKET (and the other MAILROOM_S3_* settings)',
};

/** The target backend, checked: one of the kinds, and configured. */
function targetOf(store: Store, to: string): SourceKind {
  const kind = SOURCE_KINDS.find((k) => k === to);
  if (kind === undefined) {
    throw new MailroomError('VALIDATION_FAILED', `to must be one of ${SOURCE_KINDS.join(', ')} (got '${to}')`, {
      field: 'to',
    });
  }
  if (kind !== 'postgres' && !store.sources.external.some((b) => b.kind === kind)) {
    throw new MailroomError('VALIDATION_FAILED', `to: the ${kind} backend is not configured (set ${SETTING[kind]})`, {
      field: 'to',
    });
  }
  return kind;
}

/**
 * `mailroom blobs migrate --to <backend>`: moves every message source held elsewhere into one
 * backend, while the engine runs. Each batch copies the sources (written durably, as ingest
 * writes them), switches their rows in one transaction where they still name the old backend,
 * then deletes the old copies one batch later (and a reader that took the row's old backend just
 * before the switch and finds nothing there follows the row to the new one: MessageSources.read). A run cut short (a crash, an outage) leaves every
 * row naming a backend that holds its source, and at most copies no row names, which the
 * retention job's sweep removes; running it again carries on where it stopped (the rows are the
 * state). Readers follow the row, so sources stay readable throughout.
 */
export async function migrateSources(
  deps: { store: Store; logger: Logger },
  request: MigrationRequest,
): Promise<MigrationReport> {
  const { store } = deps;
  const to = targetOf(store, request.to);
  const batchSize = request.batchSize ?? DEFAULT_MIGRATE_BATCH;
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 10_000) {
    throw new MailroomError('VALIDATION_FAILED', 'batchSize must be a whole number from 1 to 10000', {
      field: 'batchSize',
    });
  }
  const log = deps.logger.child({ component: 'blobs-migrate', to });
  const pending = await store.sourceMoves.countPending(to);
  const progress: MigrationProgress = {
    total: pending.count,
    totalBytes: pending.bytes,
    moved: 0,
    movedBytes: 0,
    missing: 0,
    skipped: 0,
  };
  const missingIds: string[] = [];
  log.info({ total: progress.total, bytes: progress.totalBytes }, 'moving message sources');
  /** The old copies of the previous batch, deleted after the next one commits. */
  let oldCopies: SourceToMove[] = [];
  const removeOld = async (moves: SourceToMove[]): Promise<void> => {
    for (const kind of ['directory', 's3'] as const) {
      const refs: SourceRef[] = moves.filter((m) => m.from === kind);
      if (refs.length === 0) continue;
      // The rows name the new backend: a failure here leaves orphans, which the sweeper removes.
      await store.sources
        .remove(kind, refs)
        .catch((err: unknown) => log.warn({ err, backend: kind }, 'old copies left for the sweeper'));
    }
  };
  let cursor: string | null = null;
  try {
    for (;;) {
      const page = await store.sourceMoves.pending(to, cursor, batchSize);
      if (page.length === 0) break;
      cursor = page[page.length - 1]?.messageId ?? null;
      const raw = new Map<string, Buffer>();
      await mapLimited(page, CONCURRENCY, async (move) => {
        const bytes = await store.sources.read(move, move.from);
        if (bytes === null) {
          progress.missing += 1;
          if (missingIds.length < 100) missingIds.push(move.messageId);
          return;
        }
        if (to !== 'postgres') {
          try {
            await store.sources.backend(to).put(move, bytes);
          } catch (err) {
            throw unavailable(to, 'written', err);
          }
        }
        raw.set(move.messageId, bytes);
      });
      const copied = page.filter((m) => raw.has(m.messageId));
      const switched = new Set(await store.transaction((tx) => tx.sourceMoves.switchTo(to, copied, raw)));
      const moved = copied.filter((m) => switched.has(m.messageId));
      progress.moved += moved.length;
      progress.movedBytes += moved.reduce((sum, m) => sum + (raw.get(m.messageId)?.length ?? 0), 0);
      progress.skipped += copied.length - moved.length;
      await removeOld(oldCopies);
      oldCopies = moved;
      request.onProgress?.({ ...progress });
    }
  } finally {
    // Also when a batch failed: the rows of the batches before it name the new backend already.
    await removeOld(oldCopies);
  }
  const report: MigrationReport = { to, ...progress, missingIds };
  if (store.sources.writeKind !== to) {
    report.note =
      `new sources are still written to ${store.sources.writeKind}: set MAILROOM_BLOB_STORE=${to} ` +
      '(and restart the engine), then run this again to move what arrived meanwhile';
  }
  log.info({ ...progress }, 'message sources moved');
  return report;
}
