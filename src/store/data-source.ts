import type { ClientBase } from 'pg';
import { DataSource } from 'typeorm';
import type { Logger } from '../shared/logger.js';
import { ENTITIES } from './entities.js';
import { MIGRATIONS } from './migrations/index.js';
import { pgliteDriver } from './pglite-pool.js';

export type StoreKind = 'postgres' | 'pglite';

export interface DataSourceOptions {
  /** `postgres://…`; absent selects PGlite. */
  databaseUrl?: string | undefined;
  /** PGlite data folder; absent with PGlite means in memory (tests). */
  pgliteDir?: string | undefined;
  /** [10] PostgreSQL pool size. */
  poolSize?: number;
}

/** Any two numbers; the same on every instance so that concurrent starts migrate one at a time. */
const MIGRATION_LOCK = [0x4d61696c, 0x726f6f6d] as const; // 'Mail' 'room'

export function createDataSource(options: DataSourceOptions): { dataSource: DataSource; kind: StoreKind } {
  const common = {
    type: 'postgres' as const,
    entities: ENTITIES,
    migrations: MIGRATIONS,
    migrationsTableName: 'mailroom_migrations',
    synchronize: false,
    logging: false,
  };
  if (options.databaseUrl) {
    return {
      kind: 'postgres',
      dataSource: new DataSource({
        ...common,
        url: options.databaseUrl,
        poolSize: options.poolSize ?? 10,
        applicationName: 'mailroom',
        extra: { onConnect: listenForErrors },
      }),
    };
  }
  return { kind: 'pglite', dataSource: new DataSource({ ...common, driver: pgliteDriver(options.pgliteDir) }) };
}

/**
 * Gives a new PostgreSQL connection an 'error' listener of its own, for its whole life. pg emits
 * 'error' when a connection fails while no query runs on it, and an event nobody listens to is
 * thrown: the process ends. The pool listens while a connection is idle and TypeORM while it uses
 * one, but between the two (a connection just handed out, TypeORM's listener a microtask away)
 * nobody does: a server shutting down as a connection is made (its FATAL 57P01 read in the same
 * chunk as the ReadyForQuery) ended the engine. The error is not lost: the connection is no longer
 * queryable, its queries fail with it, and the pool drops it when it comes back.
 */
function listenForErrors(client: ClientBase): void {
  client.on('error', () => undefined);
}

/**
 * Runs pending migrations. On PostgreSQL an advisory lock held on a separate connection makes
 * instances that start together wait for each other instead of racing.
 */
export async function migrate(dataSource: DataSource, kind: StoreKind, logger: Logger): Promise<number> {
  const lock = kind === 'postgres' ? dataSource.createQueryRunner() : undefined;
  try {
    if (lock) await lock.query('SELECT pg_advisory_lock($1, $2)', [...MIGRATION_LOCK]);
    const applied = await dataSource.runMigrations({ transaction: 'each' });
    for (const m of applied) logger.info({ migration: m.name }, 'applied migration');
    return applied.length;
  } finally {
    if (lock) {
      await lock.query('SELECT pg_advisory_unlock($1, $2)', [...MIGRATION_LOCK]).catch(() => undefined);
      await lock.release();
    }
  }
}
