import { EntitySchema, type EntityManager } from 'typeorm';

/**
 * Leases of e-mail servers between engine instances sharing one database. An instance renews one
 * row (`engine_instances.expires_at`); a server's lease (`server_leases`) is valid while its
 * owner's row is, so renewing costs one statement however many servers an instance holds, and
 * all leases of an instance that stopped renewing lapse together. Every time here is the
 * database's (`now()`), so instances with skewed clocks still agree on who holds what.
 */

/** A live engine process: `owner` is unique per process, `instanceId` the configured name. */
export interface EngineInstanceRow {
  owner: string;
  instanceId: string;
  startedAt: Date;
  expiresAt: Date;
  /** Where `pid` is meaningful (host, kernel boot, PID namespace: shared/process-place.ts); null when unknown. */
  place?: string | null;
  pid?: number | null;
}

/** The instance (`owner`) that watches an e-mail server, as long as that instance is alive. */
export interface ServerLeaseRow {
  serverId: string;
  owner: string;
  acquiredAt: Date;
}

export const EngineInstanceEntity = new EntitySchema<EngineInstanceRow>({
  name: 'EngineInstance',
  tableName: 'engine_instances',
  columns: {
    owner: { type: 'text', primary: true },
    instanceId: { type: 'text', name: 'instance_id' },
    startedAt: { type: 'timestamptz', name: 'started_at', default: () => 'now()' },
    expiresAt: { type: 'timestamptz', name: 'expires_at' },
    place: { type: 'text', nullable: true },
    pid: { type: 'integer', nullable: true },
  },
});

export const ServerLeaseEntity = new EntitySchema<ServerLeaseRow>({
  name: 'ServerLease',
  tableName: 'server_leases',
  columns: {
    serverId: { type: 'uuid', name: 'server_id', primary: true },
    owner: { type: 'text' },
    acquiredAt: { type: 'timestamptz', name: 'acquired_at', default: () => 'now()' },
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

/** The lease's owner is alive (`l` is the lease row). */
const OWNER_LIVE = `EXISTS (SELECT 1 FROM engine_instances i WHERE i.owner = l.owner AND i.expires_at > now())`;

export class LeaseRepository {
  constructor(private readonly em: EntityManager) {}

  /**
   * Says this process is alive until now + ttl (this renews all its leases at once); forgets
   * processes gone for more than a day, with their leases.
   */
  async announce(
    owner: string,
    instanceId: string,
    ttlMs: number,
    self: { place: string | null; pid: number } = { place: null, pid: 0 },
  ): Promise<void> {
    await this.em.query(
      `INSERT INTO engine_instances (owner, instance_id, expires_at, place, pid) VALUES ($1, $2, ${UNTIL('$3')}, $4, $5)
       ON CONFLICT (owner) DO UPDATE SET expires_at = EXCLUDED.expires_at,
         place = COALESCE(EXCLUDED.place, engine_instances.place), pid = COALESCE(EXCLUDED.pid, engine_instances.pid)`,
      [owner, instanceId, ttlMs, self.place, self.place === null ? null : self.pid],
    );
  }

  /**
   * The live processes that announced themselves under `instanceId` from the same `place` (the
   * same process table) other than `owner`: earlier incarnations of this instance on this machine.
   */
  async predecessors(owner: string, instanceId: string, place: string): Promise<Array<{ owner: string; pid: number }>> {
    const rows: Array<{ owner: string; pid: number }> = await this.em.query(
      `SELECT owner, pid FROM engine_instances
        WHERE instance_id = $1 AND place = $2 AND owner <> $3 AND pid IS NOT NULL AND expires_at > now()`,
      [instanceId, place, owner],
    );
    return rows.map((r) => ({ owner: r.owner, pid: Number(r.pid) }));
  }

  /** Ends a process that is known to be gone: its row lapses now, and with it all its leases. */
  async lapse(owner: string): Promise<number> {
    const rows: Array<{ owner: string }> = await this.em.query(
      `UPDATE engine_instances SET expires_at = now() WHERE owner = $1 AND expires_at > now() RETURNING owner`,
      [owner],
    );
    return rows.length;
  }

  /** Removes instances gone for more than a day and their leases (occasional housekeeping). */
  async forgetDeparted(): Promise<void> {
    await this.em.query(
      `DELETE FROM server_leases l WHERE l.owner IN
         (SELECT owner FROM engine_instances WHERE expires_at < now() - interval '1 day')`,
    );
    await this.em.query(`DELETE FROM engine_instances WHERE expires_at < now() - interval '1 day'`);
  }

  /**
   * The enabled servers this owner holds; leases of disabled servers are given up. A lease taken
   * by another instance (while this one failed to renew in time) is simply no longer listed.
   */
  async held(owner: string): Promise<string[]> {
    await this.em.query(
      `DELETE FROM server_leases l USING email_servers s WHERE s.id = l.server_id AND l.owner = $1 AND NOT s.enabled`,
      [owner],
    );
    const rows: Array<{ server_id: string }> = await this.em.query(
      `SELECT server_id FROM server_leases WHERE owner = $1`,
      [owner],
    );
    return rows.map((r) => r.server_id);
  }

  /** Of these servers, the ones that still exist and are enabled (a lease of one of them lost was taken). */
  async enabledAmong(serverIds: readonly string[]): Promise<string[]> {
    const rows: Array<{ id: string }> = await this.em.query(
      `SELECT id FROM email_servers WHERE enabled AND id = ANY($1::uuid[])`,
      [serverIds],
    );
    return rows.map((r) => r.id);
  }

  /**
   * Takes up to `limit` enabled servers that nobody holds or whose holder is no longer alive, in
   * random order so that instances starting together spread out. Two instances racing for the
   * same server: the second one's insert meets the first one's live lease and takes nothing.
   */
  async acquire(owner: string, limit: number): Promise<string[]> {
    if (limit <= 0) return [];
    const rows: Array<{ server_id: string }> = await this.em.query(
      `INSERT INTO server_leases AS l (server_id, owner)
         SELECT s.id, $1 FROM email_servers s
          WHERE s.enabled AND NOT EXISTS (
            SELECT 1 FROM server_leases l JOIN engine_instances i ON i.owner = l.owner
             WHERE l.server_id = s.id AND i.expires_at > now())
          ORDER BY random() LIMIT $2
       ON CONFLICT (server_id) DO UPDATE SET owner = EXCLUDED.owner, acquired_at = now()
         WHERE NOT ${OWNER_LIVE}
       RETURNING server_id`,
      [owner, limit],
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
      `SELECT l.owner, count(*) AS n FROM server_leases l
         JOIN engine_instances i ON i.owner = l.owner AND i.expires_at > now()
        GROUP BY l.owner`,
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

  /** The live holder of one server's lease, if any. */
  async holderOf(serverId: string): Promise<{ owner: string; instanceId: string } | null> {
    const rows: Array<{ owner: string; instance_id: string }> = await this.em.query(
      `SELECT l.owner, i.instance_id FROM server_leases l JOIN engine_instances i ON i.owner = l.owner
        WHERE l.server_id = $1 AND i.expires_at > now()`,
      [serverId],
    );
    const row = rows[0];
    return row ? { owner: row.owner, instanceId: row.instance_id } : null;
  }

  /** Every live lease with its holder's configured instance id and expiry (for the API and metrics). */
  async holders(): Promise<Array<{ serverId: string; owner: string; instanceId: string; expiresAt: Date }>> {
    const rows: Array<{ server_id: string; owner: string; instance_id: string; expires_at: Date }> =
      await this.em.query(
        `SELECT l.server_id, l.owner, i.instance_id, i.expires_at
           FROM server_leases l JOIN engine_instances i ON i.owner = l.owner
          WHERE i.expires_at > now()`,
      );
    return rows.map((r) => ({
      serverId: r.server_id,
      owner: r.owner,
      instanceId: r.instance_id,
      expiresAt: new Date(r.expires_at),
    }));
  }
}
