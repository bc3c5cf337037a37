/**
 * What the inbound benchmarks start and stop: a private Dovecot, a fresh PostgreSQL database
 * and Mailroom's inbound side over it. Everything registers its stop in test/support/cleanup.ts;
 * `runBench` runs those cleanups whatever happens and makes sure the process exits.
 */
import { randomBytes } from 'node:crypto';
import { ImapFlow, type ImapFlowOptions } from 'imapflow';
import pg from 'pg';
import { createAccounts } from '../../src/accounts/index.js';
import { CredentialService } from '../../src/auth/credentials.js';
import { createInbound, type Inbound, type InboundOptions } from '../../src/inbound/index.js';
import { AddressPolicy } from '../../src/shared/address-policy.js';
import { SecretSealer } from '../../src/shared/sealed-secrets.js';
import { Store } from '../../src/store/store.js';
import { addCleanup, runCleanups } from '../../test/support/cleanup.js';
import { POSTGRES_ADMIN_URL, createTestDatabase, quietLogger } from '../../test/support/database.js';
import { dovecotBinary, startDovecot, type DovecotInstance } from '../../test/support/dovecot.js';
import { emit, progress } from './report.js';

export const PASSWORD = 'bench-pw';
/** Messages appended per pipelined round. */
const APPEND_WINDOW = 200;
/** Grace after the cleanups before the process is made to exit (a handle left open), ms. */
const EXIT_GRACE_MS = 5_000;

/** Why the benchmark cannot run here, or null when Dovecot and PostgreSQL are available. */
export async function missingRequirement(): Promise<string | null> {
  if (!dovecotBinary()) return 'dovecot not installed (apt-get install dovecot-imapd)';
  if (process.getuid?.() !== 0) return 'the private Dovecot instance must be started as root';
  const client = new pg.Client({ connectionString: POSTGRES_ADMIN_URL, connectionTimeoutMillis: 3_000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return null;
  } catch (err) {
    return `PostgreSQL not reachable at ${POSTGRES_ADMIN_URL}: ${(err as Error).message}`;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Runs one benchmark: prints a skip line when a requirement is missing, runs the cleanups at the
 * end, sets the exit code, and forces the exit if a handle stays open after the cleanups.
 */
export function runBench(bench: string, body: () => Promise<void>): void {
  void (async () => {
    let code = 0;
    try {
      const missing = await missingRequirement();
      if (missing) emit({ bench, skipped: missing });
      else await body();
    } catch (err) {
      progress(bench, `failed: ${(err as Error).stack ?? String(err)}`);
      code = 1;
    } finally {
      await runCleanups();
    }
    process.exitCode = code;
    setTimeout(() => {
      progress(bench, 'a handle stayed open after the cleanups; exiting');
      process.exit(code);
    }, EXIT_GRACE_MS).unref();
  })();
}

export async function startBenchDovecot(users: string[]): Promise<DovecotInstance> {
  const dovecot = await startDovecot({ users: users.map((user) => ({ user, password: PASSWORD })) });
  addCleanup(() => dovecot.close());
  return dovecot;
}

/** A connected imapflow client for `user`, logged out at the end of the run. */
export async function imapClient(
  dovecot: DovecotInstance,
  user: string,
  extra: Partial<ImapFlowOptions> = {},
): Promise<ImapFlow> {
  const client = new ImapFlow({
    host: dovecot.host,
    port: dovecot.port,
    secure: false,
    auth: { user, pass: PASSWORD },
    logger: false,
    ...extra,
  });
  client.on('error', () => undefined); // 'close' follows; the benchmark notices the failed command
  await client.connect();
  addCleanup(async () => {
    if (client.usable) await client.logout().catch(() => undefined);
    client.close();
  }, 'first');
  return client;
}

/** Appends `count` messages to the user's INBOX, APPEND_WINDOW commands in flight at a time. */
export async function appendMessages(
  dovecot: DovecotInstance,
  user: string,
  count: number,
  message: (n: number) => string,
): Promise<void> {
  const client = await imapClient(dovecot, user);
  try {
    for (let start = 0; start < count; start += APPEND_WINDOW) {
      const round = Array.from({ length: Math.min(APPEND_WINDOW, count - start) }, (_, i) => start + i);
      await Promise.all(round.map((n) => client.append('INBOX', message(n))));
    }
  } finally {
    await client.logout().catch(() => undefined);
  }
}

export interface MailroomUnderTest {
  store: Store;
  inbound: Inbound;
  sealer: SecretSealer;
  tenantId: string;
  serverId: string;
  destinationId: string;
}

/**
 * A fresh PostgreSQL database with one tenant, one server (the Dovecot user) and one destination
 * (`address`), and an inbound side over it that is created but not started.
 */
export async function prepareMailroom(
  dovecot: DovecotInstance,
  user: string,
  address: string,
  options: Partial<InboundOptions> = {},
  /** More fields of the destination (a webhook, say). */
  destinationFields: Record<string, unknown> = {},
): Promise<MailroomUnderTest> {
  const databaseUrl = await createTestDatabase();
  const store = await Store.open({ databaseUrl }, quietLogger);
  addCleanup(() => store.close(), 'first');
  const sealer = new SecretSealer(randomBytes(32));
  const accounts = createAccounts(store, sealer, quietLogger, { webhookAddresses: AddressPolicy.allowPrivate() });
  const tenant = await accounts.tenants.create({ name: 'Bench' });
  const server = await accounts.servers.create(tenant.id, {
    name: user,
    imap: {
      host: dovecot.host,
      port: dovecot.port,
      secure: false,
      user,
      auth: { method: 'password', password: PASSWORD },
    },
    smtp: { host: '127.0.0.1', port: 2525, auth: { mode: 'none' } },
  });
  const destination = await accounts.destinations.create(tenant.id, {
    name: address,
    address,
    serverId: server.id,
    ...destinationFields,
  });
  const inbound = createInbound({ store, credentials: new CredentialService(sealer), logger: quietLogger, options });
  // Registered after the store's close: cleanups run last-in first-out, so this stops first.
  addCleanup(() => inbound.stop(), 'first');
  return { store, inbound, sealer, tenantId: tenant.id, serverId: server.id, destinationId: destination.id };
}

/** Settles like `promise`, or rejects naming `what` when it has not settled within `ms`. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not done within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
