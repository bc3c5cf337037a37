import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Post-processing progress is one number per mailbox (`post_processed_uid`: every message up to
 * that UID had its action run) instead of a timestamp written into every stored message: ingest
 * then writes each message row once, not twice (the second write rewrote the whole row and its
 * five index entries). Existing progress carries over: the watermark stops before the first
 * message still waiting for its action.
 */
export class PostProcessWatermark1764000000009 implements MigrationInterface {
  name = 'PostProcessWatermark1764000000009';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE mailbox_checkpoints ADD COLUMN post_processed_uid bigint NOT NULL DEFAULT 0`);
    await q.query(
      `UPDATE mailbox_checkpoints c
          SET post_processed_uid = COALESCE(
                (SELECT min(m.uid) - 1 FROM inbound_messages m
                  WHERE m.server_id = c.server_id AND m.mailbox = c.mailbox AND m.uid_validity = c.uid_validity
                    AND m.post_processed_at IS NULL AND m.status <> 'quarantined'),
                c.last_uid)`,
    );
    await q.query(`ALTER TABLE mailbox_checkpoints ALTER COLUMN post_processed_uid DROP DEFAULT`);
    await q.query(`ALTER TABLE inbound_messages DROP COLUMN post_processed_at`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE inbound_messages ADD COLUMN post_processed_at timestamptz`);
    await q.query(
      `UPDATE inbound_messages m SET post_processed_at = now()
         FROM mailbox_checkpoints c
        WHERE m.server_id = c.server_id AND m.mailbox = c.mailbox AND m.uid_validity = c.uid_validity
          AND m.uid <= c.post_processed_uid`,
    );
    await q.query(`ALTER TABLE mailbox_checkpoints DROP COLUMN post_processed_uid`);
  }
}
