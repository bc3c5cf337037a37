import { EntitySchema, type EntityManager } from 'typeorm';

/**
 * Leases of e-mail servers between engine instances sharing one database. Every time here is the
 * database's (`now()`), so instances with skewed clocks still agree on who holds what.
 */

/** A live engine process: `owner` is unique per process, `instanceId` the configured name. */
export interface EngineInstanceRow {
  owner: string;
  instanceId: string;
  startedAt: Date;
  expiresAt: Date;
}

/** The instance (`owner`) that watches an e-mail server until `expiresAt`, unless it renews. */
export interface ServerLeaseRow {
  serverId: string;
  owner: string;
  acquiredAt: Date;
  expiresAt: Date;
}

export const EngineInstanceEntity = new EntitySchema<EngineInstanceRow>({
  name: 'EngineInstance',
  tableName: 'engine_instances',
  columns: {
    owner: { type: 'text', primary: true },
    instanceId: { type: 'text', name: 'instance_id' },
    startedAt: { type: 'timestamptz', name: 'started_at', default: () => 'now()' },
    expiresAt: { type: 'timestamptz', name: 'expires_at' },
  },
});

export const ServerLeaseEntity = new EntitySchema<ServerLeaseRow>({
  name: 'ServerLease',
  tableName: 'server_leases',
  columns: {
    serverId: { type: 'uuid', name: 'server_id', primary: true },
    owner: { type: 'text' },
    acquiredAt: { type: 'timestamptz', name: 'acquired_at', default: () => 'now()' },
    expiresAt: { type: 'timestamptz', name: 'expires_at' },
  },
  relations: {
    server: {
      type: 'many-to-one',
      target: 'EmailServer',
      joinColumn: { name: 'server_id', foreignKeyConstraintName: 'server_leases_server_fk' },
      onDelete: 'CASCADE',
    },
  } as object,
  indices: [{ name: 'server_leases_owner_idx', columns: ['owner'] }],
});

/** `now() + ttl`: the ttl parameter is in milliseconds. */
const UNTIL = (param: string): string => `now() + (${param}::integer * interval '1 millisecond')`;

export class LeaseRepository {
  constructor(private readonly em: EntityManager) {}

  /** Says this process is alive until now + ttl; forgets processes gone for more than a day. */
  async announce(owner: string, instanceId: string, ttlMs: number): Promise<void> {
    await this.em.query(
      `INSERT INTO engine_instances (owner, instance_id, expires_at) VALUES ($1, $2, ${UNTIL('$3')})
       ON CONFLICT (owner) DO UPDATE SET expires_at = EXCLUDED.expires_at`,
      [owner, instanceId, ttlMs],
    );
    await this.em.query(`DELETE FROM engine_instances WHERE expires_at < now() - interval '1 day'`);
  }

  /** Extends this owner's leases of enabled servers; returns the server ids it still holds. */
  async renew(owner: string, ttlMs: number): Promise<string[]> {
    // A lease of a server that was disabled or whose lease expired and was taken is not renewed.
    await this.em.query(
      `DELETE FROM server_leases l USING email_servers s WHERE s.id = l.server_id AND l.owner = $1 AND NOT s.enabled`,
      [owner],
    );
    const rows: Array<{ server_id: string }> = await this.em.query(
      // Through a CTE: TypeORM answers a bare UPDATE with [rows, count] instead of the rows.
      `WITH renewed AS (UPDATE server_leases SET expires_at = ${UNTIL('$2')} WHERE owner = $1 RETURNING server_id)
       SELECT server_id FROM renewed`,
      [owner, ttlMs],
    );
    return rows.map((r) => r.server_id);
  }

  /**
   * Takes up to `limit` enabled servers that nobody holds (or whose lease expired), in random
   * order so that instances starting together spread out. Two instances racing for the same
   * server: the second one's insert meets the first one's live lease and takes nothing.
   */
  async acquire(owner: string, ttlMs: number, limit: number): Promise<string[]> {
    if (limit <= 0) return [];
    const rows: Array<{ server_id: string }> = await this.em.query(
      `INSERT INTO server_leases (server_id, owner, expires_at)
         SELECT s.id, $1, ${UNTIL('$2')}
           FROM email_servers s LEFT JOIN server_leases l ON l.server_id = s.id
          WHERE s.enabled AND (l.server_id IS NULL OR l.expires_at <= now())
          ORDER BY random() LIMIT $3
       ON CONFLICT (server_id) DO UPDATE
         SET owner = EXCLUDED.owner, expires_at = EXCLUDED.expires_at, acquired_at = now()
         WHERE server_leases.expires_at <= now()
       RETURNING server_id`,
      [owner, ttlMs, limit],
    );
    return rows.map((r) => r.server_id);
  }

  /** Gives up some (or, without ids, all) of this owner's leases. */
  async release(owner: string, serverIds?: readonly string[]): Promise<void> {
    if (serverIds === undefined) {
      await this.em.query(`DELETE FROM server_leases WHERE owner = $1`, [owner]);
    } else if (serverIds.length > 0) {
      await this.em.query(`DELETE FROM server_leases WHERE owner = $1 AND server_id = ANY($2::uuid[])`, [
        owner,
        serverIds,
      ]);
    }
  }

  /** Removes this process from the live instances (its leases too). */
  async leave(owner: string): Promise<void> {
    await this.release(owner);
    await this.em.query(`DELETE FROM engine_instances WHERE owner = $1`, [owner]);
  }

  /** The shape of the cluster now: live instances, enabled servers, live leases per owner. */
  async census(): Promise<{ instances: number; servers: number; leasesByOwner: Map<string, number> }> {
    const [counts]: Array<{ instances: string; servers: string }> = await this.em.query(
      `SELECT (SELECT count(*) FROM engine_instances WHERE expires_at > now()) AS instances,
              (SELECT count(*) FROM email_servers WHERE enabled) AS servers`,
    );
    const byOwner: Array<{ owner: string; n: string }> = await this.em.query(
      `SELECT owner, count(*) AS n FROM server_leases WHERE expires_at > now() GROUP BY owner`,
    );
    return {
      instances: Number(counts?.instances ?? 0),
      servers: Number(counts?.servers ?? 0),
      leasesByOwner: new Map(byOwner.map((r) => [r.owner, Number(r.n)])),
    };
  }

  /** The live engine processes. */
  async instances(): Promise<EngineInstanceRow[]> {
    return this.em.query(
      `SELECT owner, instance_id AS "instanceId", started_at AS "startedAt", expires_at AS "expiresAt"
         FROM engine_instances WHERE expires_at > now() ORDER BY started_at`,
    );
  }

  /** Every live lease with its holder's configured instance id (for the API and metrics). */
  async holders(): Promise<Array<{ serverId: string; owner: string; instanceId: string | null; expiresAt: Date }>> {
    const rows: Array<{ server_id: string; owner: string; instance_id: string | null; expires_at: Date }> =
      await this.em.query(
        `SELECT l.server_id, l.owner, i.instance_id, l.expires_at
           FROM server_leases l LEFT JOIN engine_instances i ON i.owner = l.owner
          WHERE l.expires_at > now()`,
      );
    return rows.map((r) => ({
      serverId: r.server_id,
      owner: r.owner,
      instanceId: r.instance_id,
      expiresAt: new Date(r.expires_at),
    }));
  }
}
