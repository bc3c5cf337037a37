import type { EntityManager } from 'typeorm';
import { returned } from './returned-rows.js';
import type { SourceKind } from './sources/source-backend.js';

/** A source to move: its message, and the backend its row names now. */
export interface SourceToMove {
  tenantId: string;
  messageId: string;
  from: SourceKind;
  bytes: number;
}

type Row = Record<string, unknown>;

/**
 * The rows `mailroom blobs migrate` reads and switches. A row names its source's backend; moving
 * a source is a copy, then this switch (conditional on the row still naming the old backend, so a
 * message deleted or stripped meanwhile is left alone), then the old copy's deletion.
 */
export class SourceMoves {
  constructor(private readonly em: EntityManager) {}

  /** How many sources are not in `to` (the progress's total). */
  async countPending(to: SourceKind): Promise<{ count: number; bytes: number }> {
    const rows: Row[] = await this.em.query(
      `SELECT count(*) AS n, COALESCE(sum(source_size), 0) AS bytes FROM inbound_messages
        WHERE source_store IS NOT NULL AND source_store <> $1`,
      [to],
    );
    return { count: Number(rows[0]?.n ?? 0), bytes: Number(rows[0]?.bytes ?? 0) };
  }

  /** Up to `limit` sources not in `to`, in id order after `after` (a cursor: those that failed are passed). */
  async pending(to: SourceKind, after: string | null, limit: number): Promise<SourceToMove[]> {
    const rows: Row[] = await this.em.query(
      `SELECT id, tenant_id, source_store, source_size FROM inbound_messages
        WHERE source_store IS NOT NULL AND source_store <> $1 AND ($2::uuid IS NULL OR id > $2::uuid)
        ORDER BY id LIMIT $3`,
      [to, after, limit],
    );
    return rows.map((r) => ({
      tenantId: r.tenant_id as string,
      messageId: r.id as string,
      from: r.source_store as SourceKind,
      bytes: Number(r.source_size ?? 0),
    }));
  }

  /**
   * Points the rows at `to` where they still name the backend they were read from; for PostgreSQL
   * as the target, writes the bytes into `inbound_raw` (`raw`, by message id) in the same
   * statement; from PostgreSQL, deletes them there. Run in one transaction; answers the ids switched.
   */
  async switchTo(to: SourceKind, moves: readonly SourceToMove[], raw: ReadonlyMap<string, Buffer>): Promise<string[]> {
    const switched: string[] = [];
    for (const move of moves) {
      const rows = await returned(
        this.em.query(
          `UPDATE inbound_messages SET source_store = $3 WHERE id = $1 AND source_store = $2 RETURNING id`,
          [move.messageId, move.from, to],
        ),
      );
      if (rows.length === 0) continue;
      if (to === 'postgres') {
        await this.em.query(
          `INSERT INTO inbound_raw (message_id, raw) VALUES ($1, $2)
           ON CONFLICT (message_id) DO UPDATE SET raw = EXCLUDED.raw`,
          [move.messageId, raw.get(move.messageId)],
        );
      }
      if (move.from === 'postgres') {
        await this.em.query('DELETE FROM inbound_raw WHERE message_id = $1', [move.messageId]);
      }
      switched.push(move.messageId);
    }
    return switched;
  }
}
