import pg from 'pg';
import { createLogger, type Logger } from '../../src/shared/logger.js';
import { Store, type StoreKind } from '../../src/store/store.js';
import { addCleanup } from './cleanup.js';

/**
 * Test databases. PostgreSQL on 127.0.0.1:5432 (user postgres, trust) gets a fresh database per
 * test run, dropped at the end. PGlite runs in memory, one instance per run (each start costs
 * seconds). In CI PostgreSQL is mandatory; elsewhere its absence is reported and PGlite alone runs.
 */

export const POSTGRES_ADMIN_URL =
  process.env.MAILROOM_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

let postgresReachable: Promise<boolean> | undefined;

export function isPostgresReachable(): Promise<boolean> {
  postgresReachable ??= (async () => {
    const client = new pg.Client({ connectionString: POSTGRES_ADMIN_URL, connectionTimeoutMillis: 3000 });
    try {
      await client.connect();
      await client.query('SELECT 1');
      return true;
    } catch (err) {
      if (process.env.CI === 'true') {
        throw new Error(`PostgreSQL is required in CI but ${POSTGRES_ADMIN_URL} failed: ${(err as Error).message}`);
      }
      process.stdout.write(`note: PostgreSQL not reachable at ${POSTGRES_ADMIN_URL}; store tests run on PGlite only\n`);
      return false;
    } finally {
      await client.end().catch(() => undefined);
    }
  })();
  return postgresReachable;
}

/** The backends to run store tests on. */
export async function testBackends(): Promise<StoreKind[]> {
  return (await isPostgresReachable()) ? ['postgres', 'pglite'] : ['pglite'];
}

let databaseCounter = 0;

/** Creates an empty PostgreSQL database for this run and returns its URL; dropped at the end. */
export async function createTestDatabase(): Promise<string> {
  const name = `mailroom_test_${process.pid}_${Date.now().toString(36)}_${databaseCounter++}`;
  const admin = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  addCleanup(async () => {
    const c = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
    await c.connect();
    try {
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    } finally {
      await c.end();
    }
  });
  const url = new URL(POSTGRES_ADMIN_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

export const quietLogger: Logger = createLogger({ level: 'silent' });

const shared = new Map<StoreKind, Promise<Store>>();

/** One migrated store per backend for the whole run; `resetStore` empties it between tests. */
export function sharedStore(kind: StoreKind): Promise<Store> {
  let store = shared.get(kind);
  if (!store) {
    store = (async () => {
      const databaseUrl = kind === 'postgres' ? await createTestDatabase() : undefined;
      const opened = await Store.open({ databaseUrl, poolSize: 5 }, quietLogger);
      addCleanup(() => opened.close(), 'first');
      return opened;
    })();
    shared.set(kind, store);
  }
  return store;
}

/** Empties every table (the schema stays). */
export async function resetStore(store: Store): Promise<void> {
  await store.query(
    'TRUNCATE audit_log, trace_events, erasures, tenant_retention, job_leases, server_leases, engine_instances, webhook_deliveries, smtp_send_log, outbound_requests, outbound_messages, alerts, inbound_deliveries, inbound_raw, inbound_messages, mailbox_checkpoints, api_tokens, destinations, email_servers, tenants CASCADE',
  );
}
